"""Request-rate loads on a real vLLM server (vLLM's CPU build and the tiny models):
``rate:1,4`` open loop, speculative and baseline, with goodput and the frontier in the
report. Skipped without SPECBENCH_VLLM_PYTHON / SPECBENCH_TINY_MODELS, like the other
vLLM tests (SPECBENCH_REQUIRE_VLLM=1 turns the skip into a failure)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.sweeps.test_vllm_engine import AVAILABLE, REQUIRED, _sweep

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not AVAILABLE and not REQUIRED,
        reason="SPECBENCH_VLLM_PYTHON / SPECBENCH_TINY_MODELS not set (see .ci/vllm.sh)",
    ),
]


def test_rate_loads_on_vllm_give_goodput_and_the_frontier(tmp_path: Path) -> None:
    out = tmp_path / "rates"
    summary = _sweep(
        out, uuid.uuid4().hex, "--target", "tiny-llama", "--strategy", "fixed", "--config", "2,1,3",
        "--load", "rate:1,4", "--slo", "tpot_p99_ms=2000",
    )  # fmt: skip
    rates = summary["rates"]
    rows = {(r["config_key"], r["load"]): r for r in rates["rows"]}
    assert set(rows) == {
        (k, load) for k in ("baseline", "2-1-3") for load in ("1 req/s", "4 req/s")
    }
    for row in rows.values():
        assert row["failed"] == 0 and row["completed"] == row["requests"]
        assert row["tpot_ms_p99"] > 0 and row["ttft_ms_p99"] > 0
        assert row["goodput_per_s"] is not None and row["output_tokens_per_s_per_user"] > 0
    assert rates["headline"].startswith("within p99 TPOT 2000 ms: no speculation ")
    report = (out / "report.html").read_text()
    assert 'id="fig-rate-frontier"' in report and 'id="fig-rate-goodput"' in report
