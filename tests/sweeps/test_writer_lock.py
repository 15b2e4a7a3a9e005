"""One writer per run directory: a second sweep on a held --out is refused in one line
(exit 2) and writes nothing; sweeps started at the same instant never both measure;
workers of one --storage study share the directory; a killed holder frees it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from specbench.rundir.layout import RunDirectory
from specbench.rundir.records import read_records
from specbench.rundir.writer_lock import LOCK_NAME, RunDirectoryInUseError, acquire
from specbench.sweeps.options import requests_per_load
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options, run_cli

SWEEP = ["sweep", "--target", "minimax-m2.7", "--backend", "sim", "--num-prompts", "4",
         "--max-new-tokens", "24", "--concurrency", "1,4", "--trials", "3", "--no-report"]  # fmt: skip


def _refused(result: subprocess.CompletedProcess[str], out: Path) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--out {out} is in use by another sweep" in lines[0], lines[0]
    return lines[0]


def test_a_sweep_on_a_held_run_directory_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(fast_options(out, trials=2))  # in-process: its lock is released at the end
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK_NAME}
    held = acquire(out, "otherhost:4242@7")
    try:
        line = _refused(run_cli([*SWEEP, "--out", str(out)], tmp_path), out)
        assert "another sweep (otherhost:4242@7)" in line
        # A worker of a shared study is refused beside a sweep that owns its directory.
        storage = ["--storage", str(tmp_path / "shared.journal")]
        shared = run_cli([*SWEEP, *storage, "--out", str(out)], tmp_path)
        assert "does not share its study through --storage" in _refused(shared, out)
        with pytest.raises(RunDirectoryInUseError):
            run_sweep(fast_options(out, trials=3))
    finally:
        held.release()
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK_NAME}
    assert after == before
    # Released, the same directory resumes.
    assert run_sweep(fast_options(out, trials=3)).measured_now == 1


def test_shared_holders_run_together_and_exclude_a_plain_sweep(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    first = acquire(tmp_path / "run", "host:1@1", shared=True)
    second = acquire(tmp_path / "run", "host:2@2", shared=True)
    with pytest.raises(RunDirectoryInUseError, match=r"in use by another sweep \(host:1@1\)"):
        acquire(tmp_path / "run", "host:3@3")
    first.release()
    assert (tmp_path / "run" / LOCK_NAME).exists()  # the second still holds it
    second.release()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    acquire(tmp_path / "run", "host:3@3").release()


def test_two_sweeps_started_together_never_both_measure(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [sys.executable, "-m", "specbench", *SWEEP, "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "SPECBENCH_DEBUG"}
    sweeps = [
        subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [(s.wait(timeout=240), *s.communicate()) for s in sweeps]
    codes = sorted(code for code, _, _ in results)
    assert codes[0] == 0, results
    for code, _stdout, stderr in results:
        if code != 0:
            # Refused by the lock, never "not a specbench run directory (holds .manifest...)".
            _refused(subprocess.CompletedProcess(args, code, "", stderr), out)
    # Every load of every trial has its requests exactly once: nobody measured twice.
    loads = Counter((r.trial_number, r.concurrency) for r in read_records(out / "requests.jsonl"))
    assert loads and all(n == requests_per_load(4, c) for (_, c), n in loads.items()), loads


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, pathlib; from specbench.rundir.writer_lock import acquire; "
         "lock = acquire(pathlib.Path(sys.argv[1]), 'host:9@9'); print('held', flush=True); "
         "sys.stdin.read()", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirectoryInUseError):
            acquire(tmp_path, "host:10@10")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (tmp_path / LOCK_NAME).exists()  # left by the killed holder, not locked
    lock = acquire(tmp_path, "host:10@10")
    assert (tmp_path / LOCK_NAME).read_text().strip() == "host:10@10"
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()  # a finished holder removes it
    assert RunDirectory(tmp_path).writer_lock is None  # readers never lock
