"""Two sweep workers sharing one PostgreSQL study (the several-GPU-hosts setup), on the sim.

Needs SPECBENCH_TEST_POSTGRES_URL (CI starts a cluster in .ci/postgres.sh); skipped
without it unless SPECBENCH_REQUIRE_POSTGRES=1, which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from specbench.rundir.records import read_records
from specbench.sweeps.options import requests_per_load

URL = os.environ.get("SPECBENCH_TEST_POSTGRES_URL")
REQUIRED = os.environ.get("SPECBENCH_REQUIRE_POSTGRES") == "1"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        URL is None and not REQUIRED, reason="SPECBENCH_TEST_POSTGRES_URL is not set"
    ),
]

TRIALS = 8


def _worker(out: Path, study: str, cwd: Path) -> subprocess.Popen[str]:
    assert URL is not None, "SPECBENCH_REQUIRE_POSTGRES=1 but SPECBENCH_TEST_POSTGRES_URL is unset"
    args = [
        sys.executable, "-m", "specbench", "sweep",
        "--target", "minimax-m2.7", "--backend", "sim",
        "--storage", URL, "--study-name", study, "--out", str(out),
        "--trials", str(TRIALS), "--num-prompts", "6", "--max-new-tokens", "48",
        "--concurrency", "1,4", "--no-report", "--json",
    ]  # fmt: skip
    return subprocess.Popen(
        args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_workers_share_one_study(tmp_path: Path) -> None:
    study = f"specbench-test-{uuid.uuid4().hex[:12]}"
    out = tmp_path / "shared-run"
    workers = [_worker(out, study, tmp_path) for _ in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr

    results = json.loads((out / "results.json").read_text())
    rows = [r for r in results["trials"] if r["config_key"] != "baseline"]
    assert all(r["state"] == "complete" for r in rows)
    primary = [r["config_key"] for r in rows if r["concurrency"] == 1]
    # All trials done, none measured twice (a race may add one beyond --trials).
    assert TRIALS <= len(primary) <= TRIALS + 1
    assert len(primary) == len(set(primary))
    # Both workers measured and both are in the one results file.
    workers_seen = {r["worker"] for r in rows}
    assert len(workers_seen) == 2, workers_seen
    assert results["study"]["name"] == study
    assert "***" in results["study"]["storage"] or "@" not in results["study"]["storage"]
    # The baseline was measured once for the study, by one worker.
    baseline_records = [r for r in read_records(out / "requests.jsonl") if r.trial_number == -1]
    assert len([r for r in baseline_records if r.concurrency == 1]) == requests_per_load(6, 1)
    baseline_rows = [r for r in results["trials"] if r["config_key"] == "baseline"]
    assert len(baseline_rows) == 2
    assert len({r["worker"] for r in baseline_rows}) == 1
    per_worker = {
        r.trial_number for r in read_records(out / "requests.jsonl") if r.trial_number != -1
    }
    assert {r["trial_number"] for r in rows} == per_worker
    # No configuration was measured by two trials (requests are written per measurement).
    owners: dict[str, set[int | None]] = {}
    for record in read_records(out / "requests.jsonl"):
        owners.setdefault(record.config_key, set()).add(record.trial_number)
    assert all(len(numbers) == 1 for numbers in owners.values()), owners
