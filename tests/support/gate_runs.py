"""Shared pieces of the gate tests: the golden runs and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import DATA

GOLDEN = DATA / "golden"
BASE = GOLDEN / "base"
NOISE = GOLDEN / "noise"
DROP10 = GOLDEN / "drop10"
FEW_A = GOLDEN / "few-a"
FEW_B = GOLDEN / "few-b"
BASELINE_FILE = GOLDEN / "baseline.json"


def copy_run(src: Path, dst: Path) -> Path:
    """A writable copy of a golden run, for tests that break it."""
    shutil.copytree(src, dst)
    return dst


def run_gate_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m specbench gate ...` as CI runs it: exit code, stdout, stderr."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SPECBENCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "specbench", "gate", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
