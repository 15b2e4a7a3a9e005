"""User mistakes end as one line and exit 2: no traceback, no "internal error", and
nothing a server sent reaches the terminal unescaped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

FAST = ["--num-prompts", "3", "--max-new-tokens", "8", "--concurrency", "1",
        "--trials", "1", "--no-report"]  # fmt: skip


def run(args: list[str], cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("SPECBENCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "specbench", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


def assert_user_error(result: subprocess.CompletedProcess[str], needle: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("specbench: error: ") and "internal error" not in lines[0]
    assert needle in lines[0], lines[0]
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    return lines[0]


def test_out_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    result = run(["sweep", *FAST, "--out", "a-file/run"], tmp_path)
    assert_user_error(result, "a-file is a file")


def test_out_in_a_forbidden_directory(tmp_path: Path) -> None:
    # sysfs refuses new entries to every user, root included (chmod 0555 does not stop root).
    result = run(["sweep", *FAST, "--out", "/sys/specbench-run"], tmp_path)
    assert_user_error(result, "/sys/specbench-run: cannot write there")


def test_report_output_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(["sweep", *FAST, "--out", str(run_dir)], tmp_path).returncode == 0
    (tmp_path / "f").write_text("x")
    assert_user_error(run(["report", str(run_dir), "-o", "f/report.html"], tmp_path), "f is a file")
    assert_user_error(
        run(["report", str(run_dir), "-o", "/proc/specbench/report.html"], tmp_path),
        "cannot write there",
    )


@pytest.mark.parametrize("endpoint", ["notaurl", "ftp://127.0.0.1:1", "http://", "http://h:99999"])
def test_endpoint_that_is_not_a_url(tmp_path: Path, endpoint: str) -> None:
    assert_user_error(run(["sweep", *FAST, "--endpoint", endpoint], tmp_path), "--endpoint")


HOSTILE = b"\x1b]0;owned\x07\x1b[2J\x1b[31mRED\r\xe2\x80\xae\x00garbage\n" * 50


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """A TCP server that answers every connection with terminal escape sequences."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(HOSTILE)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(5)
    sock.close()


def test_endpoint_that_speaks_garbage(tmp_path: Path, garbage_server: str) -> None:
    result = run(["sweep", *FAST, "--endpoint", garbage_server], tmp_path)
    line = assert_user_error(result, f"--endpoint: cannot reach the server at {garbage_server}")
    assert "\x07" not in result.stderr and "\u202e" not in result.stderr
    assert "\x00" not in result.stderr and "\\x1b" in line
    assert len(line) < 400  # cut short, not 50 copies


def test_truncated_study_journal_names_the_file(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(["sweep", *FAST, "--out", str(run_dir)], tmp_path).returncode == 0
    journal = run_dir / "study.journal"
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) // 2])
    result = run(["sweep", *FAST, "--out", str(run_dir)], tmp_path)
    assert_user_error(result, f"{journal}: the Optuna study journal is truncated")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sweep", "--concurrency", "1000000"], "--concurrency: 1000000 is above the maximum"),
        (["sweep", "--max-new-tokens", "100000000"], "--max-new-tokens must be <= "),
        (["sweep", "--num-prompts", "1000000000"], "--num-prompts must be <= "),
        (["sweep", "--trials", "10000000"], "--trials must be <= "),
        (["sweep", "--request-timeout", "0"], "--request-timeout must be >= "),
        (["sweep", "--request-timeout", "inf"], "--request-timeout must be a finite number"),
        (["sweep", "--ready-timeout", "nan"], "--ready-timeout must be a finite number"),
        (["sweep", "--tp", "100000"], "--tp must be <= "),
        (["sweep", "--budget-minutes", "1e12"], "--budget-minutes must be <= "),
        (["sweep", "--load", "rate:-1"], "--load rate must be >= 0.001 requests/s"),
        (["sweep", "--load", "rate:1e9"], "--load rate must be <= 10000 requests/s"),
        (["sweep", "--load", "rate:1", "--slo", "tpot_p75_ms=5"], "unknown percentile p75"),
        (["sweep", "--load", "rate:1", "--max-concurrency", "99999"], "--max-concurrency must"),
        (["sweep", "--load", "concurrency:1", "--concurrency", "8"], "the short form of --load"),
        (["sweep", "--arrival", "constant"], "--arrival applies to request-rate loads"),
        (["predict", "--rate", "0"], "--rate must be >= 0.001 requests/s"),
        (
            ["predict", "--target", "minimax-m2.7", "--concurrency", "1,999999"],
            "--concurrency: 999999 is above the maximum",
        ),
        (
            ["gate", "--baseline", "a", "--candidate", "b", "--concurrency", "5000"],
            "--concurrency: 5000 is above the maximum",
        ),
        (["serve-sim", "--target", "minimax-m2.7", "--port", "70000"], "--port must be <= 65535"),
        (
            ["serve-sim", "--target", "minimax-m2.7", "--time-scale", "0"],
            "--time-scale must be >= ",
        ),
    ],
)
def test_sizes_are_bounded_at_the_cli(tmp_path: Path, args: list[str], needle: str) -> None:
    assert_user_error(run(args, tmp_path, timeout=60), needle)
    assert not (tmp_path / "runs").exists()  # refused before anything was written
