"""Every vLLM line specbench builds or prints, put through vLLM 0.32.0's own parser.

``SPECBENCH_VLLM_PYTHON`` is the interpreter of the venv .ci/vllm.sh builds;
tests/support/vllm_parse.py runs there with the parser ``python -m
vllm.entrypoints.openai.api_server`` and ``vllm serve`` build, and returns the parsed
values, compared here with what specbench meant. Skipped without it unless
``SPECBENCH_REQUIRE_VLLM=1`` (CI). Printed lines go through a real shell first (``bash``
echoes its words), so a quoting or an unexpanded path shows as the wrong value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from specbench.harness.engine import Deployment
from specbench.harness.vllm import VLLM
from specbench.model import load_target
from specbench.spec_config import SpecConfig
from tests.support.parser_runs import parse_in_engine_venv

VLLM_PYTHON = os.environ.get("SPECBENCH_VLLM_PYTHON")
REQUIRED = os.environ.get("SPECBENCH_REQUIRE_VLLM") == "1"
AVAILABLE = bool(VLLM_PYTHON and Path(VLLM_PYTHON).exists())
SUPPORT = Path(__file__).resolve().parents[1] / "support"
DATA = Path(__file__).resolve().parents[1] / "data" / "vllm"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        not AVAILABLE and not REQUIRED, reason="SPECBENCH_VLLM_PYTHON not set (see .ci/vllm.sh)"
    ),
]


@dataclasses.dataclass(frozen=True)
class Line:
    """One line, and the values vLLM must parse from it."""

    kind: str
    words: list[str]
    want: dict[str, Any]


def _spec(deployment: Deployment, k: int) -> dict[str, Any]:
    return VLLM.speculative_config(deployment, SpecConfig(k, 1, k + 1))


def _want(deployment: Deployment, k: int | None, dtype: str) -> dict[str, Any]:
    return {
        "model": deployment.model_path,
        "tensor_parallel_size": deployment.tp,
        "enable_expert_parallel": deployment.ep is not None,
        "max_num_seqs": deployment.max_batch,
        "dtype": dtype,
        "speculative_config": _spec(deployment, k) if k is not None else None,
    }


#: The tiny models' folder in the shell a printed line is pasted into (where it is unset
#: here, the preset's ${SPECBENCH_TINY_MODELS} stays in the line for that shell to expand).
PASTED_TINY = os.environ.get("SPECBENCH_TINY_MODELS") or "/pasted/tiny-models"


def _shell_words(line: str) -> list[str]:
    """The words a shell hands the program for a pasted ``line``."""
    done = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {line}"],
        env={**os.environ, "SPECBENCH_TINY_MODELS": PASTED_TINY},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split("\0")[:-1]


def _as_pasted(want: dict[str, Any]) -> dict[str, Any]:
    """``want`` as the pasting shell expands it."""
    text = json.dumps(want).replace("${SPECBENCH_TINY_MODELS}", PASTED_TINY)
    pasted: dict[str, Any] = json.loads(text)
    return pasted


def _cases(deployment: Deployment, kind: str, dtype: str) -> list[Line]:
    lines = [
        Line(
            f"launched baseline {kind}",
            VLLM.launch_args(deployment, None, host="127.0.0.1", port=8001),
            {**_want(deployment, None, dtype), "host": "127.0.0.1", "port": 8001},
        ),
        Line(
            f"printed baseline {kind}",
            _shell_words(VLLM.baseline_launch_line(deployment)),
            _as_pasted(_want(deployment, None, dtype)),
        ),
    ]
    for k in (1, 3):
        config = SpecConfig(k, 1, k + 1)
        lines.append(
            Line(
                f"launched k={k} {kind}",
                VLLM.launch_args(deployment, config),
                _want(deployment, k, dtype),
            )
        )
        printed = _shell_words(VLLM.launch_line(deployment, config)[1])
        lines.append(
            Line(f"printed k={k} {kind}", printed, _as_pasted(_want(deployment, k, dtype)))
        )
    return lines


def _lines() -> list[Line]:
    tiny = Deployment.of(load_target("tiny-llama"), max_batch=8)
    wide = dataclasses.replace(tiny, tp=2, ep=2, draft_tp=1)
    ngram = dataclasses.replace(tiny, algorithm="NGRAM")
    info = json.loads((DATA / "eagle3-k3-bf16.server_info.json").read_text())
    attached = VLLM.served_deployment(info, Deployment.of(load_target("tiny-llama")))
    return [
        *_cases(tiny, "tiny", "float32"),
        *_cases(wide, "tp 2 + EP", "float32"),
        *_cases(ngram, "ngram", "float32"),
        *_cases(attached, "attached bf16", "bfloat16"),
    ]


def _parse(lines: list[list[str]]) -> list[dict[str, Any]]:
    assert AVAILABLE, "SPECBENCH_REQUIRE_VLLM=1 but SPECBENCH_VLLM_PYTHON is missing"
    assert VLLM_PYTHON is not None
    return parse_in_engine_venv(VLLM_PYTHON, SUPPORT / "vllm_parse.py", lines)


def test_every_vllm_line_parses_to_what_specbench_meant() -> None:
    lines = _lines()
    results = _parse([line.words for line in lines])
    failures = []
    for line, result in zip(lines, results, strict=True):
        if not result["ok"]:
            failures.append(f"{line.kind}: refused (exit {result['exit']}): {result['error']}")
            continue
        for field, want in line.want.items():
            have = result["values"][field]
            if have != want:
                failures.append(f"{line.kind}: {field} is {have!r}, not {want!r}")
    accepted = sum(1 for result in results if result["ok"])
    assert not failures, f"{accepted} of {len(lines)} lines accepted:\n" + "\n".join(failures)
