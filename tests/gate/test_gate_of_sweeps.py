"""The gate on run directories written by the real (simulated) sweep, end to end.

The golden runs are synthetic; this checks the gate against what `specbench sweep`
actually writes today, so a drift in the run-directory contract shows up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.gate_runs import run_gate_cli

SWEEP = (
    "--backend", "sim", "--strategy", "fixed", "--config", "3,4,8", "--concurrency", "1,4",
    "--seed", "7", "--num-prompts", "12", "--max-new-tokens", "48", "--no-report",
)  # fmt: skip


def sweep(out: Path, *extra: str) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "specbench", "sweep", *SWEEP, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-sweep")
    return {
        "a": sweep(root / "a"),
        "rerun": sweep(root / "rerun"),
        # Same workload on a host-staged interconnect: speculation stops paying.
        "host-staged": sweep(root / "host-staged", "--hardware", "h100-pcie-host-staged"),
    }


def test_rerun_of_a_fixed_sweep_passes_also_against_a_saved_baseline(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    proc = run_gate_cli("--baseline", runs["a"], "--candidate", runs["rerun"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    baseline = tmp_path / "specbench-baseline.json"
    assert run_gate_cli("--save-baseline", baseline, runs["a"]).returncode == 0
    proc = run_gate_cli("--baseline", baseline, "--candidate", runs["rerun"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 checks, 8 pass" in proc.stdout


def test_other_hardware_is_not_comparable_and_forced_is_a_speedup_regression(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    refused = run_gate_cli("--baseline", runs["a"], "--candidate", runs["host-staged"])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("specbench: error: not comparable: ")
    for needle in ("h200-nvlink", "h100-pcie-host-staged", "--force"):
        assert needle in line, line
    assert refused.stdout == ""
    junit = tmp_path / "gate.xml"
    proc = run_gate_cli(
        "--baseline", runs["a"], "--candidate", runs["host-staged"], "--junit", junit, "--force"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first, *rest = proc.stdout.splitlines()
    assert first.startswith("gate FAIL (SIMULATED): "), proc.stdout
    assert any(r.startswith("FORCED: the hardware differs (GPU: ") for r in rest), proc.stdout
    failed = {
        case.get("name")
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None
    }
    assert {"speedup[3-4-8, c=1]", "speedup[3-4-8, c=4]"} <= failed
    # The draft did not change, so acceptance did not either.
    assert not any(name and name.startswith("tau[") for name in failed)
