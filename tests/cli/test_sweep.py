"""`specbench sweep` as a user runs it: the default command and one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from specbench.rundir.layout import RunDirectory
from tests.support.sweeps import run_cli

#: A sweep that waits inside a chosen trial until it is signalled.
PAUSED_SWEEP = Path(__file__).parents[1] / "support" / "paused_sweep.py"

FAST_ARGS = ["--num-prompts", "4", "--max-new-tokens", "24", "--concurrency", "1,4", "--no-report"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line_error(result: object, needle: str) -> None:
    import subprocess

    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("specbench: error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_default_command_picks_the_sim_and_writes_a_run(tmp_path: Path) -> None:
    # The README's command, as is (default trials, prompts and concurrencies).
    result = run_cli(["sweep", "--target", "minimax-m2.7", "--no-report"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SIMULATED backend on hardware profile 'h200-nvlink'" in result.stderr.replace("\n", " ")
    assert "SIMULATED" in result.stdout
    assert "--speculative-num-steps" in result.stdout
    (run_path,) = (tmp_path / "runs").iterdir()
    assert run_path.name.endswith("-minimax-m2.7-h200-nvlink")
    run = RunDirectory(run_path)
    for path in (run.manifest_path, run.results_path, run.trials_path, run.requests_path):
        assert path.exists(), path
    results = run.read_results()
    assert results["simulated"] is True
    assert results["study"]["measured"] == 30
    # Nothing but the run's own files (no lock file), and the next steps to paste.
    assert sorted(p.name for p in run_path.iterdir()) == sorted(
        ["logs", "manifest.json", "requests.jsonl", "results.json", "study.journal", "trials.csv"]
    )
    tail = result.stdout.replace("\n", " ")
    assert f"report: specbench report runs/{run_path.name}" in tail
    assert f"specbench gate --baseline runs/{run_path.name} --candidate NEW_RUN_DIR" in tail
    assert results["concurrencies"] == [1, 8, 32]
    assert results["best"]["speedup"] > 1.0


def test_json_output_and_fixed_strategy(tmp_path: Path) -> None:
    out = tmp_path / "gate-run"
    result = run_cli(
        ["sweep", "--strategy", "fixed", "--config", "3,4,8", "--config", "5,4,8",
         "--out", str(out), "--json", *FAST_ARGS],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["run_dir"] == str(out)
    assert summary["simulated"] is True
    assert summary["best"]["config_key"] in {"3-4-8", "5-4-8"}
    assert "trials" not in summary


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "no-such-model"], "unknown target 'no-such-model'"),
        (["--space", "num_steps=2..5,topk=3"], "topk=3 is outside the supported 1|2|4|8"),
        (["--space", "num_steps=2,topk=1,num_draft_tokens=8..9"], "leaves no configuration"),
        (["--trials", "0"], "--trials must be >= 1"),
        (["--config", "3,4,8"], "only used with --strategy fixed"),
        (["--strategy", "fixed", "--config", "3,1,8"], "topk 1"),
        (["--concurrency", "1,x"], "'x' is not a positive integer"),
        (["--endpoint", "http://127.0.0.1:9", "--strategy", "grid"], "drop --strategy grid"),
        (["--hardware", "no-such-gpu"], "unknown hardware 'no-such-gpu'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    _one_line_error(run_cli(["sweep", *FAST_ARGS, *args], cwd=tmp_path), needle)
    assert not (tmp_path / "runs").exists()


def test_unreachable_endpoint_is_one_line(tmp_path: Path) -> None:
    port = _closed_port()
    result = run_cli(["sweep", "--endpoint", f"http://127.0.0.1:{port}", *FAST_ARGS], cwd=tmp_path)
    _one_line_error(result, f"127.0.0.1:{port}")


def test_unreachable_storage_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    port = _closed_port()
    out = tmp_path / "never"
    url = f"postgresql://specbench:secret@127.0.0.1:{port}/specbench"
    result = run_cli(["sweep", "--storage", url, "--out", str(out), *FAST_ARGS], cwd=tmp_path)
    _one_line_error(result, "cannot open study storage")
    assert "secret" not in result.stderr  # the password is never echoed
    assert not out.exists()


def test_incompatible_run_directory_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_cli(["sweep", "--trials", "2", "--out", str(out), *FAST_ARGS], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    other = run_cli(
        ["sweep", "--trials", "2", "--out", str(out), *FAST_ARGS, "--max-new-tokens", "16"],
        cwd=tmp_path,
    )
    _one_line_error(other, "describes a different sweep")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    # The same command resumes: nothing new to measure, exit 0.
    again = run_cli(["sweep", "--trials", "2", "--out", str(out), *FAST_ARGS], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(0 in this run)" in again.stdout


def test_sigterm_mid_sweep_keeps_finished_trials_and_resume_continues(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "stopped"
    args = ["sweep", "--out", str(out), "--num-prompts", "6", "--max-new-tokens", "64",
            "--concurrency", "1,8", "--trials", "4", "--no-report"]  # fmt: skip
    marker = tmp_path / "inside-trial-1"
    # Trial 1 (the second speculative configuration) waits inside its second load until
    # the signal: the signal lands inside a trial however busy the machine is.
    proc = subprocess.Popen(
        [sys.executable, str(PAUSED_SWEEP), str(marker), "2", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep never reached trial 1"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "to resume" in stderr
    results = RunDirectory(out).read_results()
    states = {r["trial_number"]: r["state"] for r in results["trials"] if r["trial_number"] >= 0}
    assert states[1] == "failed" and states[0] == "complete"  # it was measuring trial 1
    finished = {
        r["config_key"]
        for r in results["trials"]
        if r["state"] == "complete" and r["config_key"] != "baseline"
    }
    resumed = run_cli(args, cwd=tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    rows = RunDirectory(out).read_results()["trials"]
    done = [r for r in rows if r["state"] == "complete" and r["concurrency"] == 1]
    keys = [r["config_key"] for r in done if r["config_key"] != "baseline"]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert finished <= set(keys)
    # Finished trials were not measured again: their trial numbers are unchanged.
    before = {
        r["config_key"]: r["trial_number"] for r in results["trials"] if r["state"] == "complete"
    }
    after = {r["config_key"]: r["trial_number"] for r in rows if r["state"] == "complete"}
    assert all(after[k] == n for k, n in before.items())
