"""The vLLM engine adapter: its flags, its launch-argument parser, its rules, its stats.

Flag names follow vllm-project/vllm ``vllm/engine/arg_utils.py`` (``--speculative-config``
is one JSON object, ``vllm/config/speculative.py`` ``SpeculativeConfig``); the
per-request counters follow ``vllm/entrypoints/openai/protocol.py``
(``metrics.speculative_decoding`` on the usage chunk, sent with
``--per-request-spec-decode-metrics summary``); the server counters follow
``vllm/v1/spec_decode/metrics.py`` (``vllm:spec_decode_*`` on ``/metrics``).

vLLM 0.32 drafts a chain, never a tree: its only shape parameter is the chain length
k (``num_speculative_tokens``), which the shared configuration spells as
``(num_steps=k, topk=1, num_draft_tokens=k+1)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import urllib.error
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from specbench.errors import BadInputError, ServerError
from specbench.harness.adaptive_config import VLLM_ADAPTIVE
from specbench.harness.claims import ClientView, latency_problem, token_count_problem
from specbench.harness.engine import (
    Deployment,
    EngineAdapter,
    LaunchArgs,
    RequestSender,
    RequestStats,
)
from specbench.harness.net import fetch_server_info, http_call, printable_fields
from specbench.harness.served_deployment import without_flags
from specbench.harness.shell_line import shell_line
from specbench.harness.vllm_server_state import served_deployment
from specbench.spec_config import EAGLE3, SpecConfig
from specbench.spec_methods import engine_method, method, method_of_engine_name

if TYPE_CHECKING:
    import aiohttp

    from specbench.harness.backend import LoadSpec
    from specbench.harness.claims import ClaimContext

#: The preset's algorithm name -> vLLM's ``method`` (speculative.py ``SpeculativeMethod``).
METHODS: dict[str, str] = {
    "EAGLE3": "eagle3",
    "EAGLE": "eagle",
    "DRAFT_MODEL": "draft_model",
    "STANDALONE": "draft_model",
    "NGRAM": "ngram",
    "SUFFIX": "suffix",
    "DFLASH": "dflash",
    "MTP": "mtp",
    "NEXTN": "mtp",
}
#: Methods that take no separate draft checkpoint (ngram and suffix read the text; MTP
#: layers ship inside the target).
_NO_DRAFT_MODEL = frozenset({"ngram", "suffix", "mtp"})
#: The interpreter of vLLM's own virtualenv (vLLM stays out of specbench's install).
PYTHON_ENV = "SPECBENCH_VLLM_PYTHON"
#: Where the server reports its resolved configuration (only with VLLM_SERVER_DEV_MODE=1).
SERVER_INFO_PATH = "/server_info?config_format=json"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SPEC_PREFIX = "vllm:spec_decode_"


class _ArgParser(argparse.ArgumentParser):
    """argparse that reports errors as BadInputError instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"--server-args: {message}")


def method_of(algorithm: str) -> str:
    """vLLM's ``method`` for a preset algorithm name (case-insensitive)."""
    method = METHODS.get(algorithm.upper())
    if method is None:
        raise BadInputError(
            f"vLLM has no speculative method for algorithm {algorithm!r} "
            f"(known: {', '.join(sorted(METHODS))})"
        )
    return method


# -- /metrics ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SpecCounters:
    """vLLM's speculative counters at one moment, summed over engines."""

    drafts: float
    draft_tokens: float
    accepted: float
    #: Accepted tokens per draft position (index 0 = the first drafted token).
    per_position: tuple[float, ...]

    @property
    def tau(self) -> float | None:
        """Mean acceptance length 1 + accepted / drafts (None when nothing was drafted)."""
        return 1.0 + self.accepted / self.drafts if self.drafts > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "drafts": self.drafts,
            "draft_tokens": self.draft_tokens,
            "accepted": self.accepted,
            "accepted_per_position": list(self.per_position),
        }


def parse_spec_counters(text: str) -> SpecCounters | None:
    """The ``vllm:spec_decode_*_total`` counters of a ``/metrics`` page; None when the
    server does not speculate (the families are absent). ``*_created`` gauges (start
    timestamps) are skipped."""
    totals: dict[str, float] = {}
    per_position: dict[int, float] = {}
    found = False
    for line in text.splitlines():
        if not line.startswith(SPEC_PREFIX):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if not name.endswith("_total"):
            continue
        found = True
        family = name[len(SPEC_PREFIX) : -len("_total")]
        if family == "num_accepted_tokens_per_pos":
            position = dict(_LABEL.findall(labels)).get("position")
            if position is not None and position.isdigit():
                index = int(position)
                per_position[index] = per_position.get(index, 0.0) + value
        else:
            totals[family] = totals.get(family, 0.0) + value
    if not found:
        return None
    width = max(per_position) + 1 if per_position else 0
    return SpecCounters(
        drafts=totals.get("num_drafts", 0.0),
        draft_tokens=totals.get("num_draft_tokens", 0.0),
        accepted=totals.get("num_accepted_tokens", 0.0),
        per_position=tuple(per_position.get(i, 0.0) for i in range(width)),
    )


def fetch_spec_counters(endpoint: str, timeout_s: float = 30.0) -> SpecCounters | None:
    """GET /metrics and parse the speculative counters (ServerError when unreachable)."""
    try:
        status, body = http_call("GET", endpoint.rstrip("/") + "/metrics", timeout_s)
    except (urllib.error.URLError, OSError) as exc:
        raise ServerError(
            f"cannot read {endpoint}/metrics: {getattr(exc, 'reason', exc)}"
        ) from None
    if status != 200:
        raise ServerError(f"{endpoint}/metrics answered HTTP {status}")
    return parse_spec_counters(body.decode("utf-8", errors="replace"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _number(value: Any) -> int | None:
    """A count as the server sent it (negatives kept for the claim check to refuse);
    None when it is not a finite number."""
    number = _finite(value)
    return int(number) if number is not None else None


class VllmAdapter(EngineAdapter):
    """``python -m vllm.entrypoints.openai.api_server`` and its OpenAI-compatible API."""

    name = "vllm"
    method_catalogue = "vllm"
    title = "vLLM"
    server_module = "vllm.entrypoints.openai.api_server"
    ready_path = "/health"
    server_info_paths = (SERVER_INFO_PATH,)
    chain_only = True
    adaptive = VLLM_ADAPTIVE
    flush_path = "/reset_prefix_cache"
    shm_pattern = "/dev/shm/psm_*"

    def config_flags(self, config: SpecConfig) -> list[str]:
        spec: dict[str, Any] = {"num_speculative_tokens": config.num_steps}
        if config.method != EAGLE3:
            spec = {"method": engine_method(config.method, "vllm").name, **spec}
            spec.update(dict(config.params))
        return ["--speculative-config", json.dumps(spec)]

    def speculative_config(self, deployment: Deployment, config: SpecConfig) -> dict[str, Any]:
        """The ``--speculative-config`` object: method, draft, chain length k, and the
        method's own keys (``prompt_lookup_min``/``max``, ``suffix_decoding_*``)."""
        if config.method == EAGLE3:
            name = method_of(deployment.algorithm)
        else:
            name = engine_method(config.method, "vllm").name
        offered = engine_method(method_of_engine_name(name, "vllm"), "vllm")
        spec: dict[str, Any] = {"method": name}
        if name not in _NO_DRAFT_MODEL:
            draft = config.method if config.method != EAGLE3 else deployment.algorithm.lower()
            spec["model"] = deployment.draft_for(draft)
        spec["num_speculative_tokens"] = config.num_steps
        for key, value in config.params:
            if offered.param(key) is None:
                raise BadInputError(
                    f"vLLM's {name} has no parameter {key} "
                    f"(it takes {', '.join(p.name for p in offered.params) or 'none'})"
                )
            spec[key] = value
        if deployment.draft_tp is not None:
            spec["draft_tensor_parallel_size"] = deployment.draft_tp
        return spec

    def speculative_flags(self, deployment: Deployment, config: SpecConfig) -> list[str]:
        return [
            "--speculative-config",
            json.dumps(self.speculative_config(deployment, config)),
            # Per-request acceptance on the usage chunk; vLLM refuses the flag without
            # a speculative config, so the baseline never gets it.
            "--per-request-spec-decode-metrics",
            "summary",
        ]

    def launch_args(
        self,
        deployment: Deployment,
        config: SpecConfig | None,
        *,
        host: str | None = None,
        port: int | None = None,
        server_args: Sequence[str] = (),
    ) -> list[str]:
        # Baseline and speculative servers get the same non-speculative flags (the
        # preset's and the user's: --max-num-seqs, --max-model-len, --dtype), so they
        # are compared on equal terms.
        args = ["--model", deployment.model_path]
        if host is not None:
            args += ["--host", host]
        if port is not None:
            args += ["--port", str(port)]
        args += ["--tensor-parallel-size", str(deployment.tp)]
        if deployment.ep is not None:
            args += ["--enable-expert-parallel"]
        extra = deployment.extra_args
        if deployment.max_batch is not None:
            args += ["--max-num-seqs", str(deployment.max_batch)]
            # The sweep's batch limit, not a preset's guess at it (the user's own
            # --server-args still come last and win).
            extra = without_flags(extra, ["--max-num-seqs"])
        if config is not None:
            args += self.speculative_flags(deployment, config)
        args += list(extra)
        args += list(server_args)
        return args

    def command(self, launch_args: Sequence[str], python: str) -> list[str]:
        """``$SPECBENCH_VLLM_PYTHON -m ...api_server`` when set (vLLM in its own venv)."""
        return [os.environ.get(PYTHON_ENV) or python, "-m", self.server_module, *launch_args]

    def launch_line(self, deployment: Deployment, config: SpecConfig) -> tuple[list[str], str]:
        """``vllm serve MODEL ...``: the form vLLM's documentation prints (the model is
        positional there; ``python -m ...api_server`` takes it as ``--model``)."""
        args = self.launch_args(deployment, config)
        line = ["vllm", "serve", args[1], *args[2:]]
        return self.speculative_flags(deployment, config), shell_line(line)

    def baseline_launch_line(self, deployment: Deployment) -> str:
        """The same ``vllm serve`` line without ``--speculative-config``."""
        args = self.launch_args(deployment, None)
        return shell_line(["vllm", "serve", args[1], *args[2:]])

    def parse_launch_args(self, args: Sequence[str]) -> LaunchArgs:
        """Read api_server arguments; others (dtype, memory, ...) are ignored."""
        parser = _ArgParser(prog="vllm-args", add_help=False, allow_abbrev=False)
        parser.add_argument("--model", dest="model_path")
        parser.add_argument("--host")
        parser.add_argument("--port", type=int)
        parser.add_argument("--tensor-parallel-size", "-tp", dest="tp", type=int)
        parser.add_argument("--speculative-config", dest="spec")
        known, ignored = parser.parse_known_args(list(args))
        out = LaunchArgs(model_path=known.model_path, host=known.host, port=known.port, tp=known.tp)
        if ignored and not ignored[0].startswith("-") and out.model_path is None:
            out.model_path = ignored.pop(0)  # ``vllm serve MODEL``
        out.ignored = ignored
        if known.spec:
            try:
                spec = json.loads(known.spec)
            except json.JSONDecodeError as exc:
                raise BadInputError(f"--speculative-config is not JSON: {exc.msg}") from None
            if not isinstance(spec, dict):
                raise BadInputError("--speculative-config must be a JSON object")
            k = _number(spec.get("num_speculative_tokens"))
            out.algorithm = str(spec["method"]) if spec.get("method") else None
            out.draft_model_path = spec.get("model")
            if k is not None:
                out.num_steps, out.topk, out.num_draft_tokens = k, 1, k + 1
        return out

    def check_config(self, config: SpecConfig) -> str | None:
        offered = method(config.method).vllm
        if offered is None:
            return f"vLLM has no {config.method} speculative method"
        unknown = [name for name, _ in config.params if offered.param(name) is None]
        if unknown:
            return f"vLLM's {offered.name} has no parameter {', '.join(unknown)}"
        if config.topk != 1:
            return (
                f"vLLM drafts a chain (no token tree): topk must be 1 (got {config.topk}); "
                "search the chain length k with --space num_steps=1..K,topk=1"
            )
        return None

    def config_from_server_info(self, info: Mapping[str, Any]) -> SpecConfig | None:
        """From ``/server_info`` (``vllm_config.speculative_config``) or, without dev mode,
        from what ``fetch_info`` read off ``/metrics`` (the same key)."""
        nested = info.get("vllm_config")
        source = nested if isinstance(nested, Mapping) else info
        spec = source.get("speculative_config")
        if not spec:
            return None
        k = _number(spec.get("num_speculative_tokens")) if isinstance(spec, Mapping) else None
        if k is None or k < 1:
            raise ServerError("the server speculates but reports no num_speculative_tokens")
        name = spec.get("method") if isinstance(spec, Mapping) else None
        if not isinstance(name, str) or name in ("eagle", "eagle3"):
            return SpecConfig(k, 1, k + 1)
        try:
            return SpecConfig(k, 1, k + 1, method_of_engine_name(name, "vllm"))
        except BadInputError:
            raise ServerError(
                f"the server runs vLLM method {name!r}, which specbench does not know"
            ) from None

    def config_problems(
        self, info: Mapping[str, Any], deployment: Deployment, config: SpecConfig | None
    ) -> list[str]:
        """The chain length from the server's own account, and with ``/server_info``
        (dev mode) the batch limit too; without dev mode vLLM publishes no scheduler
        settings, so only what ``/metrics`` shows (k) can be checked."""
        try:
            running = self.config_from_server_info(info)
        except ServerError as exc:
            return [str(exc)]
        problems: list[str] = []
        if config is not None and running is not None:
            # The server's account names the method (server_info) or not (/metrics), and
            # never the method's own keys: compare what it says.
            told = config.method if running.method != EAGLE3 else EAGLE3
            config = dataclasses.replace(config, method=told, params=())
        if running != config:
            have = running.key if running is not None else "no speculation"
            want = config.key if config is not None else "no speculation"
            problems.append(f"the server runs {have}, not {want}")
        nested = info.get("vllm_config")
        source = nested if isinstance(nested, Mapping) else info
        scheduler = source.get("scheduler_config")
        if deployment.max_batch is not None and isinstance(scheduler, Mapping):
            have_seqs = scheduler.get("max_num_seqs")
            if have_seqs != deployment.max_batch:
                problems.append(f"max_num_seqs is {have_seqs!r}, not {deployment.max_batch!r}")
        return problems

    def served_deployment(self, info: Mapping[str, Any], base: Deployment) -> Deployment:
        return served_deployment(info, base)

    def fetch_info(self, endpoint: str) -> dict[str, Any]:
        """What a running server says about itself.

        ``/server_info`` exists only with ``VLLM_SERVER_DEV_MODE=1``; otherwise k is the
        number of ``position`` labels of the per-position acceptance counter (vLLM
        creates one per position at start-up), and the model path is ``/v1/models``'
        ``root``. ``info_source`` says which was used.
        """
        endpoint = endpoint.rstrip("/")
        version = _get_json(endpoint + "/version").get("version")
        try:
            info = fetch_server_info(endpoint, self.server_info_paths)
            return dict(
                printable_fields({**info, "info_source": "server_info", "version": version})
            )
        except ServerError as exc:
            if "no server-info endpoint" not in str(exc):
                raise
        counters = fetch_spec_counters(endpoint)
        spec = None
        if counters is not None and counters.per_position:
            spec = {"num_speculative_tokens": len(counters.per_position)}
        info = {"speculative_config": spec, "info_source": "metrics", "version": version}
        models = _get_json(endpoint + "/v1/models").get("data")
        if isinstance(models, list) and models and isinstance(models[0], dict):
            info["model"] = models[0].get("root")
            info["served_model_name"] = models[0].get("id")
        return dict(printable_fields(info))

    async def request_sender(
        self,
        http: aiohttp.ClientSession,
        endpoint: str,
        load: LoadSpec,
        claims: ClaimContext,
    ) -> RequestSender:
        """The OpenAI-compatible completions/chat stream under the served model name."""
        from specbench.harness.openai_client import openai_sender

        return await openai_sender(http, endpoint, load, self, claims)

    def spec_counters(self, endpoint: str) -> dict[str, Any] | None:
        counters = fetch_spec_counters(endpoint)
        return None if counters is None else counters.as_dict()

    def claim_problem(self, stats: RequestStats, view: ClientView) -> str | None:
        """vLLM's counts: ``usage.completion_tokens`` equals the token ids streamed.
        ``num_spec_steps`` counts only the steps that had drafts (an n-gram drafter
        that finds no match runs none: 0 steps for 24 tokens in tests/data/vllm), so
        steps lie in [0, tokens] and each accepts at most k drafts: tau = 1 + accepted /
        steps in [1, k + 1]; steps + accepted <= tokens + k (the last step may accept
        past max_tokens). vLLM sends no per-request latency: the client clock, labelled."""
        problem = token_count_problem(view, stats.completion_tokens)
        tokens = stats.completion_tokens
        tokens = tokens if tokens is not None else view.streamed_tokens
        steps, accepted = stats.spec_verify_ct, stats.spec_accepted_tokens
        k = view.config.num_steps if view.config is not None else None
        if problem is None and steps is not None and not 0 <= steps <= tokens:
            problem = f"claim failed: num_spec_steps {steps} for {tokens} tokens"
        if problem is None and steps is not None and accepted is not None:
            most = steps * k if k is not None else tokens
            if not 0 <= accepted <= most or (k is not None and steps + accepted > tokens + k):
                problem = (
                    f"claim failed: num_accepted_draft_tokens {accepted} in {steps} steps "
                    f"of k = {k} for {tokens} tokens (tau {1 + accepted / max(steps, 1):.3g})"
                )
        if problem is None and stats.server_e2e_ms is not None:
            problem = latency_problem(view, stats.server_e2e_ms)
        return problem

    def counters_problem(
        self, counters: Mapping[str, Any], tokens: int, config: SpecConfig | None
    ) -> str | None:
        """The ``/metrics`` delta of one load: non-negative finite counts, accepted <=
        drafted <= k per draft, every position's accepted <= drafts, and no more drafts
        than the tokens the client received (each draft precedes at least one token)."""
        values: dict[str, Any] = {
            "drafts": counters.get("drafts"),
            "draft_tokens": counters.get("draft_tokens"),
            "accepted": counters.get("accepted"),
        }
        for i, v in enumerate(counters.get("accepted_per_position") or []):
            values[f"accepted_per_position[{i}]"] = v
        for name, value in values.items():
            number = _finite(value)
            if number is None or number < 0:
                return f"impossible /metrics delta: {name} = {value!r}"
        drafts, drafted = float(values["drafts"]), float(values["draft_tokens"])
        accepted = float(values["accepted"])
        if accepted > drafted:
            return f"impossible /metrics delta: {accepted:g} accepted of {drafted:g} drafted"
        if config is not None and drafted > drafts * config.num_steps:
            return (
                f"impossible /metrics delta: {drafted:g} draft tokens in {drafts:g} drafts "
                f"of k = {config.num_steps}"
            )
        if drafts > tokens:
            return f"impossible /metrics delta: {drafts:g} drafts for {tokens} tokens received"
        for i, v in enumerate(counters.get("accepted_per_position") or []):
            if float(v) > drafts:
                return f"impossible /metrics delta: position {i} accepted {v:g} of {drafts:g}"
        return None

    def request_stats(self, meta: Mapping[str, Any]) -> RequestStats:
        """The usage chunk (``usage`` plus ``metrics.speculative_decoding``), as the
        OpenAI client hands it over. The verify count is ``num_spec_steps`` and the
        accepted drafts are kept, so tau = sum(steps + accepted) / sum(steps) over a
        load, a ratio of sums equal to vLLM's ``1 + accepted / drafts`` counters."""
        usage = _mapping(meta.get("usage"))
        spec = _mapping(meta.get("metrics")).get("speculative_decoding")
        steps = accepted = None
        histogram: list[int] | None = None
        if isinstance(spec, Mapping):
            steps = _number(spec.get("num_spec_steps"))
            accepted = _number(spec.get("num_accepted_draft_tokens"))
            raw = spec.get("acceptance_histogram")
            if isinstance(raw, list) and all(_number(v) is not None for v in raw):
                histogram = [int(v) for v in raw]
        length = None
        if steps and accepted is not None:
            length = 1.0 + accepted / steps
        return RequestStats(
            completion_tokens=_number(usage.get("completion_tokens")),
            prompt_tokens=_number(usage.get("prompt_tokens")),
            spec_verify_ct=steps if steps else None,
            spec_accept_length=length,
            spec_accepted_tokens=accepted if steps else None,
            spec_accept_histogram=histogram,
        )


def _get_json(url: str) -> dict[str, Any]:
    """A JSON object from ``url``, or {} when it does not answer one (optional facts)."""
    try:
        status, body = http_call("GET", url, 30.0)
        data = json.loads(body) if status == 200 else {}
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


#: The adapter instance everything shares (it holds no state).
VLLM = VllmAdapter()

__all__ = [
    "METHODS",
    "PYTHON_ENV",
    "VLLM",
    "SpecCounters",
    "VllmAdapter",
    "fetch_spec_counters",
    "method_of",
    "parse_spec_counters",
]
