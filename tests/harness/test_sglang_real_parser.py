"""Every SGLang line specbench builds, put through SGLang 0.5.23's own parser.

``SPECBENCH_SGLANG_PYTHON`` is the interpreter of the venv .ci/sglang.sh builds (the PyPI
wheel, --no-deps, with the CPU torch); tests/support/sglang_parse.py runs there and calls
``sglang.srt.server_args.prepare_server_args`` on each line. Without it the test skips,
unless ``SPECBENCH_REQUIRE_SGLANG=1`` (CI), which makes a missing parser a failure.

The values SGLang parsed are compared with what specbench meant (the deployment and the
configuration the line was built from), not with specbench's own reading of the line: a
flag SGLang spells or reads differently fails here even where serve-sim accepts it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from specbench.harness.adaptive_config import SGLANG_ADAPTIVE
from specbench.harness.engine import Deployment, TargetLike
from specbench.harness.sglang import SGLANG
from specbench.model import load_target
from specbench.spec_config import SpecConfig
from specbench.verdict.adaptive_tiers import AdaptiveTier
from tests.support.parser_runs import parse_in_engine_venv

SGLANG_PYTHON = os.environ.get("SPECBENCH_SGLANG_PYTHON")
REQUIRED = os.environ.get("SPECBENCH_REQUIRE_SGLANG") == "1"
AVAILABLE = bool(SGLANG_PYTHON and Path(SGLANG_PYTHON).exists())
PARSE_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "sglang_parse.py"

pytestmark = pytest.mark.skipif(
    not AVAILABLE and not REQUIRED,
    reason="SPECBENCH_SGLANG_PYTHON not set (see .ci/sglang.sh)",
)

#: The sweep's highest concurrency: above SGLang's speculative cap of 48, so a line
#: without --max-running-requests would not run the server that was measured.
MAX_BATCH = 64
CHAIN = SpecConfig(3, 1, 4)
TREE = SpecConfig(3, 4, 8)
DEEP_TREE = SpecConfig(5, 4, 8)


@dataclasses.dataclass(frozen=True)
class Line:
    """One launch line and what specbench meant by it."""

    kind: str
    args: list[str]
    deployment: Deployment
    config: SpecConfig | None
    host: str | None = None
    port: int | None = None
    #: Further parsed fields the line sets (the adaptive flags).
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def expected(self) -> dict[str, Any]:
        d, c = self.deployment, self.config
        want: dict[str, Any] = {
            "model_path": d.model_path,
            "tp_size": d.tp,
            "ep_size": d.ep if d.ep is not None else 1,
            "max_running_requests": d.max_batch,
            "cuda_graph_max_bs_decode": d.max_batch,
            "speculative_algorithm": d.algorithm if c is not None else None,
            "speculative_draft_model_path": d.draft_model_path if c is not None else None,
            "speculative_num_steps": c.num_steps if c is not None else None,
            "speculative_eagle_topk": c.topk if c is not None else None,
            "speculative_num_draft_tokens": c.num_draft_tokens if c is not None else None,
        }
        if self.host is not None:
            want["host"] = self.host
        if self.port is not None:
            want["port"] = self.port
        return {**want, **self.extra}


def _printed(line: str) -> list[str]:
    """The arguments of a printed ``python -m sglang.launch_server ...`` line, as a shell
    would hand them over."""
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", SGLANG.server_module], line
    return argv[3:]


def _lines() -> list[Line]:
    target = load_target("minimax-m2.7")
    lines: list[Line] = []
    for tp in (4, 8):
        deployment = Deployment.of(target, tp=tp, max_batch=MAX_BATCH)
        for name, config in (
            ("baseline", None),
            ("chain", CHAIN),
            ("tree", TREE),
            ("deep tree", DEEP_TREE),
        ):
            kind = f"{name} tp {tp}" + (" ep 8" if deployment.ep else "")
            launched = SGLANG.launch_args(deployment, config, host="127.0.0.1", port=30000)
            lines.append(Line(f"launched {kind}", launched, deployment, config, "127.0.0.1", 30000))
            printed = (
                SGLANG.launch_line(deployment, config)[1]
                if config is not None
                else SGLANG.baseline_launch_line(deployment)
            )
            lines.append(Line(f"printed {kind}", _printed(printed), deployment, config))
    lines.extend(_attached_lines(target))
    lines.append(_adaptive_line(target))
    return lines


def _adaptive_line(target: TargetLike) -> Line:
    """The line ``specbench export --engine sglang`` writes: the topk-1 chain it starts
    at with --speculative-adaptive and its config file, at tp 8 + EP 8."""
    deployment = Deployment.of(target, tp=8, max_batch=MAX_BATCH)
    tiers = [AdaptiveTier(1, (2, 3, 5), 2, 1), AdaptiveTier(8, (2, 3), 2, 8)]
    _, line = SGLANG_ADAPTIVE.build(SGLANG, deployment, tiers, "/runs/r1/sglang-adaptive.json")
    return Line(
        "exported adaptive chain tp 8 ep 8",
        _printed(line),
        deployment,
        SpecConfig(2, 1, 3),
        extra={
            "speculative_adaptive": True,
            "speculative_adaptive_config": "/runs/r1/sglang-adaptive.json",
        },
    )


def _attached_lines(target: TargetLike) -> list[Line]:
    """Lines printed for attached servers, built from their own /server_info (0.5.23
    field names): a tp 8 + EP 8 speculative server and its baseline beside it."""
    info: dict[str, Any] = {
        "version": "0.5.23",
        "model_path": "/models/MiniMax-M2.7",
        "tp_size": 8,
        "ep_size": 8,
        "max_running_requests": 96,
        "cuda_graph_config": {"decode": {"max_bs": 96}},
        "speculative_algorithm": "EAGLE3",
        "speculative_draft_model_path": "/models/MiniMax-M2.7-EAGLE3",
    }
    served = SGLANG.served_deployment(info, Deployment.of(target))
    spec_line = SGLANG.launch_line(served, TREE)[1]
    base_line = SGLANG.baseline_launch_line(served)
    return [
        Line("attach-printed tree tp 8 ep 8", _printed(spec_line), served, TREE),
        Line("attach-printed baseline tp 8 ep 8", _printed(base_line), served, None),
    ]


def _parse(lines: list[list[str]]) -> list[dict[str, Any]]:
    assert AVAILABLE, "SPECBENCH_REQUIRE_SGLANG=1 but SPECBENCH_SGLANG_PYTHON is missing"
    assert SGLANG_PYTHON is not None
    return parse_in_engine_venv(SGLANG_PYTHON, PARSE_SCRIPT, lines)


def test_every_line_the_adapter_builds_parses_to_what_specbench_meant() -> None:
    lines = _lines()
    results = _parse([line.args for line in lines])
    failures = []
    for line, result in zip(lines, results, strict=True):
        if not result["ok"]:
            failures.append(f"{line.kind}: refused (exit {result['exit']}): {result['error']}")
            continue
        values = result["values"]
        for field, want in line.expected().items():
            if values[field] != want:
                failures.append(f"{line.kind}: {field} is {values[field]!r}, not {want!r}")
    accepted = sum(1 for result in results if result["ok"])
    assert not failures, f"{accepted} of {len(lines)} lines accepted:\n" + "\n".join(failures)


def test_the_parser_refuses_the_older_graph_flag() -> None:
    """The check can fail: SGLang 0.5.23 refuses the pre-0.5.23 graph flag as ambiguous."""
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=MAX_BATCH)
    older = dataclasses.replace(deployment, engine_version="0.4.6")
    [result] = _parse([SGLANG.launch_args(older, TREE)])
    assert not result["ok"]
    assert "ambiguous option: --cuda-graph-max-bs" in result["error"]


#: One configuration of every method SGLang offers, with the parameters it takes.
METHOD_CONFIGS = (
    SpecConfig.parse("eagle:3,4,8"),
    SpecConfig.parse("mtp:3,1,4"),
    SpecConfig.parse("draft_model:3,4,8"),
    SpecConfig.parse(
        "ngram:11,1,12:speculative_ngram_max_bfs_breadth=4,speculative_ngram_max_trie_depth=8"
    ),
    SpecConfig.parse("dflash:15,1,16"),
)


def _method_expected(deployment: Deployment, config: SpecConfig) -> dict[str, Any]:
    """What SGLang's parser should hold for ``config``'s line, before its hooks resolve
    the fields a method leaves to SGLang (NGRAM's steps and topk, DFLASH's three)."""
    algorithm = {"eagle": "EAGLE", "mtp": "NEXTN", "draft_model": "STANDALONE"}.get(
        config.method, config.method.upper()
    )
    drafts = config.method in ("eagle", "draft_model", "dflash")
    tree = config.method in ("eagle", "mtp", "draft_model")
    want: dict[str, Any] = {
        "speculative_algorithm": algorithm,
        "speculative_draft_model_path": deployment.draft_for(config.method) if drafts else None,
        "speculative_num_steps": config.num_steps if tree else None,
        "speculative_eagle_topk": config.topk if tree else None,
        "speculative_num_draft_tokens": None
        if config.method == "dflash"
        else config.num_draft_tokens,
        "speculative_dflash_block_size": (
            config.num_draft_tokens if config.method == "dflash" else None
        ),
    }
    for name, value in config.params:
        want[name] = value
    return want


def test_every_method_line_parses_to_the_method_meant() -> None:
    """Each method's launched and printed lines, through SGLang's parser: the algorithm
    is SGLang's own name (NEXTN, STANDALONE, NGRAM, DFLASH), the draft is sent only where
    the method loads one, and the method's own flags land in their ServerArgs fields."""
    deployment = dataclasses.replace(
        Deployment.of(load_target("minimax-m2.7"), max_batch=MAX_BATCH),
        method_drafts=(("draft_model", "/drafts/small-lm"), ("dflash", "/drafts/dflash")),
    )
    lines: list[tuple[str, list[str], SpecConfig]] = []
    for config in METHOD_CONFIGS:
        lines.append((f"launched {config.key}", SGLANG.launch_args(deployment, config), config))
        printed = _printed(SGLANG.launch_line(deployment, config)[1])
        lines.append((f"printed {config.key}", printed, config))
    results = _parse([args for _, args, _ in lines])
    failures = []
    for (kind, _, config), result in zip(lines, results, strict=True):
        if not result["ok"]:
            failures.append(f"{kind}: refused (exit {result['exit']}): {result['error']}")
            continue
        for field, want in _method_expected(deployment, config).items():
            if result["values"][field] != want:
                failures.append(f"{kind}: {field} is {result['values'][field]!r}, not {want!r}")
    assert not failures, "\n".join(failures)
