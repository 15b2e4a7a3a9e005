"""Each engine's own format for speculation that follows the batch size, and its rules.

- SGLang 0.5.23: ``--speculative-adaptive --speculative-adaptive-config FILE``, a JSON
  object keyed by batch size (python/sglang/srt/speculative/adaptive_spec_params.py:
  ``DEFAULT_ADAPTIVE_CONFIG``, ``_load_adaptive_config``; which runs may use it:
  ``adaptive_unsupported_reason``). A batch goes to the largest key not above it
  (adaptive_step_router.py); each key lists ``candidate_steps`` among which the engine
  moves by the acceptance it observes (0 = no speculation at that batch size).
- vLLM 0.32: ``num_speculative_tokens_per_batch_size: [[start, end, k], ...]`` inside
  ``--speculative-config`` (vllm/config/speculative.py), inclusive batch-size ranges,
  checked by ``validate_and_normalize_dynamic_sd_schedule`` in
  vllm/v1/spec_decode/dynamic/utils.py; k = 0 turns speculation off there.

The rules each engine applies when it loads the file are reimplemented here, so that a
file either engine would refuse is refused before any launch (one line, exit 2). Where
an engine silently does something else than the file says (SGLang ignores a key that is
not an integer; vLLM truncates 1.5 to 1 and caps k at num_speculative_tokens), the file
is refused too: it cannot mean what it says.
"""

from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from specbench.errors import BadInputError
from specbench.harness.shell_line import shell_line
from specbench.spec_config import SpecConfig

if TYPE_CHECKING:
    from specbench.harness.engine import Deployment, EngineAdapter
    from specbench.verdict.adaptive_tiers import AdaptiveTier

#: SGLang's built-in tiers (adaptive_spec_params.py, DEFAULT_ADAPTIVE_CONFIG): what
#: ``--speculative-adaptive`` runs without a config file.
SGLANG_DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "1": {"candidate_steps": [1, 3, 5, 7], "up_hysteresis": 0.0, "down_hysteresis": -0.25},
    "8": {"candidate_steps": [0, 1, 3], "up_hysteresis": 0.0, "down_hysteresis": 0.0},
    "32": {"candidate_steps": [0, 1], "up_hysteresis": 0.0, "down_hysteresis": 0.0},
    "64": {"candidate_steps": [0], "up_hysteresis": 0.0, "down_hysteresis": 0.0},
}
for _tier in SGLANG_DEFAULT_CONFIG.values():
    _tier["ceiling_coeff"] = 0

#: Settings SGLang reads beside the batch-size keys (the strategy selector, and the
#: per-slot settings, which a top-level value gives every slot: ``{**cfg, **entry}``).
SGLANG_SETTINGS = frozenset(
    {
        "strategy",
        "ema_alpha",
        "update_interval",
        "warmup_batches",
        "up_hysteresis",
        "down_hysteresis",
        "ceiling_coeff",
    }
)
#: The strategy selector of later SGLang releases (resolve_adaptive_strategy); 0.5.23
#: ignores the key, so only these two values are let through.
SGLANG_STRATEGIES = ("ema", "throughput_aware")
SGLANG_ALGORITHMS = ("EAGLE", "EAGLE3")
#: Server flags under which SGLang refuses adaptive speculation, and why
#: (adaptive_unsupported_reason).
SGLANG_REFUSING_FLAGS: dict[str, str] = {
    "--enable-dp-attention": "attention DP (tier decisions are not synchronised across DP ranks)",
    "--enable-multi-layer-eagle": "multi-layer EAGLE",
    "--enable-two-batch-overlap": "two-batch overlap",
    "--enable-pdmux": "PD multiplexing",
}
#: The slot settings written into every exported tier: SGLang's own slot defaults
#: (AdaptiveStepSlot), stated so the file shows the knobs it leaves alone.
SGLANG_SLOT_DEFAULTS: dict[str, float | int] = {
    "up_hysteresis": 0.0,
    "down_hysteresis": -0.25,
    "ceiling_coeff": 0,
}

VLLM_TABLE_KEY = "num_speculative_tokens_per_batch_size"
#: The end written for the last range when the server's batch limit is not known:
#: vLLM caps every range at its own maximum batch size, so a larger end is harmless.
VLLM_OPEN_END = 1024


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag_value(argv: Sequence[str], flag: str) -> int | None:
    return argv.index(flag) + 1 if flag in argv else None


class AdaptiveFormat(ABC):
    """One engine's adaptive speculation: the file it reads, the rules it applies, the
    launch line that uses it."""

    #: What ``specbench export --engine`` calls it (the engine's registry name).
    engine: str
    #: The default file name inside the run directory.
    file_name: str
    #: True when the engine picks among several chain lengths per tier by the acceptance
    #: it observes (SGLang); False when each range runs one k (vLLM).
    chooses_at_run_time: bool
    #: What the engine runs when told to adapt without a file (None: it needs one).
    default_body: dict[str, Any] | None = None

    @abstractmethod
    def build(
        self,
        engine: EngineAdapter,
        deployment: Deployment,
        tiers: Sequence[AdaptiveTier],
        path: str,
    ) -> tuple[dict[str, Any], str]:
        """(the file's JSON body, the full copyable launch line that serves ``tiers``
        with the file at ``path``)."""

    @abstractmethod
    def problem(self, body: object) -> str | None:
        """Why the engine would refuse ``body`` (or not do what it says), else None."""

    @abstractmethod
    def adapt_args(self, args: Sequence[str], body: Mapping[str, Any], path: str) -> list[str]:
        """A chain server's launch arguments made to serve ``body`` (the file at
        ``path`` holds it, where the engine reads a file)."""

    def check(self, body: object, where: str) -> None:
        """BadInputError naming ``where`` when the engine would refuse ``body``."""
        reason = self.problem(body)
        if reason is not None:
            raise BadInputError(
                f"{where}: {self.engine} would refuse this adaptive config: {reason}"
            )

    @abstractmethod
    def check_deployment(self, deployment: Deployment) -> None:
        """BadInputError when the engine refuses adaptive speculation for this server."""


def _chain_line(engine: EngineAdapter, deployment: Deployment, steps: int) -> list[str]:
    _, line = engine.launch_line(deployment, SpecConfig(steps, 1, steps + 1))
    return shlex.split(line)


def _longest(tiers: Sequence[AdaptiveTier]) -> int:
    return max((s for t in tiers for s in t.steps), default=0)


class SglangAdaptive(AdaptiveFormat):
    """``--speculative-adaptive-config FILE``: candidate steps per batch-size tier."""

    engine = "sglang"
    file_name = "adaptive-sglang.json"
    chooses_at_run_time = True
    default_body = SGLANG_DEFAULT_CONFIG

    def render(self, tiers: Sequence[AdaptiveTier]) -> dict[str, Any]:
        """The file: each tier's candidate steps under its lowest batch size."""
        return {
            str(t.batch_size): {"candidate_steps": list(t.steps), **SGLANG_SLOT_DEFAULTS}
            for t in tiers
        }

    def problem(self, body: object) -> str | None:
        if not isinstance(body, Mapping):
            return f"the file must hold a JSON object (got {type(body).__name__})"
        strategy = body.get("strategy", "ema")
        if strategy not in SGLANG_STRATEGIES:
            return f"'strategy' must be one of {', '.join(SGLANG_STRATEGIES)} (got {strategy!r})"
        tiers = 0
        for key, entry in body.items():
            if not isinstance(key, str) or not key.isdigit():
                if key in SGLANG_SETTINGS:
                    continue
                return (
                    f"key {key!r} is neither a batch size (digits only) nor a setting "
                    f"SGLang reads, so SGLang would ignore it"
                )
            if not isinstance(entry, Mapping):
                return f"batch size {key}: expected an object with candidate_steps"
            steps = entry.get("candidate_steps")
            if (
                not isinstance(steps, list)
                or not steps
                or not all(_is_int(s) and s >= 0 for s in steps)
            ):
                return (
                    f"batch size {key}: candidate_steps must be a non-empty list of "
                    f"non-negative integers (got {steps!r})"
                )
            tiers += 1
        if tiers == 0:
            return 'no batch-size key (digits only), e.g. {"1": {"candidate_steps": [1, 3]}}'
        return None

    def check_deployment(self, deployment: Deployment) -> None:
        if deployment.algorithm not in SGLANG_ALGORITHMS:
            raise BadInputError(
                f"SGLang's adaptive speculation runs EAGLE or EAGLE3 only, not "
                f"{deployment.algorithm} (adaptive_unsupported_reason)"
            )
        for flag, what in SGLANG_REFUSING_FLAGS.items():
            if flag in deployment.extra_args:
                raise BadInputError(f"SGLang refuses adaptive speculation with {flag}: {what}")

    def build(
        self,
        engine: EngineAdapter,
        deployment: Deployment,
        tiers: Sequence[AdaptiveTier],
        path: str,
    ) -> tuple[dict[str, Any], str]:
        self.check_deployment(deployment)
        # The server starts at the lowest tier's pick (a slot starts at the launch's
        # num_steps when that is one of its candidates); topk 1, as adaptive requires.
        start = tiers[0].pick if tiers[0].pick > 0 else _longest(tiers)
        body = self.render(tiers)
        argv = self.adapt_args(_chain_line(engine, deployment, max(start, 1)), body, path)
        return body, shell_line(argv)

    def adapt_args(self, args: Sequence[str], body: Mapping[str, Any], path: str) -> list[str]:
        return [*args, "--speculative-adaptive", "--speculative-adaptive-config", path]


class VllmAdaptive(AdaptiveFormat):
    """``--speculative-config`` with a per-batch-size chain length table."""

    engine = "vllm"
    file_name = "adaptive-vllm.json"
    chooses_at_run_time = False

    def table(self, tiers: Sequence[AdaptiveTier], deployment: Deployment) -> list[list[int]]:
        """[[start, end, k], ...]: each tier's pick up to the next tier, equal
        neighbours merged."""
        last_end = max(deployment.max_batch or VLLM_OPEN_END, tiers[-1].batch_size)
        rows: list[list[int]] = []
        for i, tier in enumerate(tiers):
            end = tiers[i + 1].batch_size - 1 if i + 1 < len(tiers) else last_end
            if rows and rows[-1][2] == tier.pick:
                rows[-1][1] = end
            else:
                rows.append([tier.batch_size, end, tier.pick])
        return rows

    def problem(self, body: object) -> str | None:
        if not isinstance(body, Mapping):
            return f"--speculative-config must be a JSON object (got {type(body).__name__})"
        k_max = body.get("num_speculative_tokens")
        if not isinstance(k_max, int) or isinstance(k_max, bool) or k_max <= 0:
            return f"num_speculative_tokens must be an integer above 0 (got {k_max!r})"
        table = body.get(VLLM_TABLE_KEY)
        if not isinstance(table, list) or not table:
            return f"{VLLM_TABLE_KEY} must be a non-empty list of [start, end, k]"
        ranges: list[tuple[int, int]] = []
        for entry in table:
            if not isinstance(entry, list) or len(entry) != 3 or not all(map(_is_int, entry)):
                return f"entry {entry!r} is not [start, end, k] in integers"
            start, end, k = (int(v) for v in entry)
            if start <= 0 or end <= 0:
                return f"batch-size range [{start}, {end}] must be positive"
            if start > end:
                return f"batch-size range [{start}, {end}] starts after it ends"
            if k < 0:
                return f"k must be >= 0 (got {k} for [{start}, {end}])"
            if k > k_max:
                return (
                    f"k {k} for [{start}, {end}] is above num_speculative_tokens {k_max} "
                    f"(vLLM would run it as {k_max})"
                )
            ranges.append((start, end))
        previous_end = 0
        for start, end in sorted(ranges):
            if start <= previous_end:
                return f"batch-size ranges overlap or repeat at [{start}, {end}]"
            previous_end = end
        if min(ranges)[0] != 1:
            return "the first batch-size range must start at 1 (every batch size needs a k)"
        return None

    def check_deployment(self, deployment: Deployment) -> None:
        """vLLM's table takes any method's chain (speculative.py sets no restriction)."""

    def build(
        self,
        engine: EngineAdapter,
        deployment: Deployment,
        tiers: Sequence[AdaptiveTier],
        path: str,
    ) -> tuple[dict[str, Any], str]:
        """The engine's own chain line at the longest k (which caps every entry), its
        --speculative-config extended with the table; vLLM takes the object inline, and
        the file at ``path`` holds the same object."""
        longest_pick = max(t.pick for t in tiers)
        argv = _chain_line(engine, deployment, max(longest_pick, 1))
        table = {VLLM_TABLE_KEY: self.table(tiers, deployment)}
        argv = self.adapt_args(argv, table, path)
        index = _flag_value(argv, "--speculative-config")
        assert index is not None  # adapt_args refuses a line without one
        spec: dict[str, Any] = json.loads(argv[index])
        return spec, shell_line(argv)

    def adapt_args(self, args: Sequence[str], body: Mapping[str, Any], path: str) -> list[str]:
        """The line's own --speculative-config with ``body``'s table (and its k) in it."""
        argv = list(args)
        index = _flag_value(argv, "--speculative-config")
        if index is None:
            raise BadInputError("the vLLM launch line has no --speculative-config to extend")
        spec = json.loads(argv[index])
        spec[VLLM_TABLE_KEY] = [list(r) for r in body[VLLM_TABLE_KEY]]
        if "num_speculative_tokens" in body:
            spec["num_speculative_tokens"] = body["num_speculative_tokens"]
        argv[index] = json.dumps(spec)
        return argv


SGLANG_ADAPTIVE = SglangAdaptive()
VLLM_ADAPTIVE = VllmAdaptive()

__all__ = [
    "SGLANG_ADAPTIVE",
    "SGLANG_DEFAULT_CONFIG",
    "VLLM_ADAPTIVE",
    "VLLM_TABLE_KEY",
    "AdaptiveFormat",
    "SglangAdaptive",
    "VllmAdaptive",
]
