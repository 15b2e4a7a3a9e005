"""Run directories stay small: per-request ITL summaries instead of every chunk timing,
unless --keep-chunks; the report and the gate read them as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specbench.rundir.records import read_records
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_requests_keep_a_summary_not_every_chunk(tmp_path: Path) -> None:
    out = tmp_path / "small"
    outcome = run_sweep(fast_options(out, trials=2, max_new_tokens=64))
    lines = _lines(out / "requests.jsonl")
    assert lines and all("itl_ms" not in line for line in lines)
    assert all({"itl_ms_p50", "itl_ms_p90", "itl_ms_p99"} <= line.keys() for line in lines)
    size = (out / "requests.jsonl").stat().st_size
    assert size / len(lines) < 400  # bytes per request, whatever max_new_tokens is
    records = read_records(out / "requests.jsonl")
    assert all(r.itl_ms == [] and r.itl_ms_p50 is not None for r in records)
    # The trial rows were computed from every chunk before they were summarised.
    assert outcome.trials["itl_ms_p50"].notna().all()


def test_keep_chunks_keeps_every_inter_token_latency(tmp_path: Path) -> None:
    out = tmp_path / "kept"
    run_sweep(fast_options(out, trials=1, max_new_tokens=64, keep_chunks=True))
    records = read_records(out / "requests.jsonl")
    ok = [r for r in records if r.ok]
    assert ok and all(len(r.itl_ms) == r.completion_tokens - 1 for r in ok)
    for record in ok[:5]:
        assert record.itl_ms_p50 == pytest.approx(np.percentile(record.itl_ms, 50), abs=2e-3)


def test_report_renders_from_summarised_records(tmp_path: Path) -> None:
    from specbench.report.html import render_report

    out = tmp_path / "r"
    run_sweep(fast_options(out, trials=2))
    assert render_report(out).exists()
