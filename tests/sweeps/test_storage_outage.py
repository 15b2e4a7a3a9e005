"""A study database that stops answering mid-sweep: one clear line and exit 1, or with
--storage-retry a wait until it is back; the same command resumes without duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import exc as sqlalchemy_exc

from specbench.rundir.layout import RunDirectory
from specbench.sweeps.storage_outage import Outage, StorageUnavailableError
from tests.support.paused_sweep import RELEASE_ENV
from tests.support.sweeps import run_cli

URL = os.environ.get("SPECBENCH_TEST_POSTGRES_URL")
PAUSED_SWEEP = Path(__file__).parents[1] / "support" / "paused_sweep.py"


def _gone() -> Exception:
    return sqlalchemy_exc.OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_an_outage_is_waited_out_once_and_then_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    notes: list[str] = []
    outage = Outage("postgresql://db", 30.0, notes.append)
    failures = iter([_gone(), _gone()])

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    assert outage.call(flaky) == "ok"
    assert len(notes) == 2 and "retrying for up to 30 s" in notes[0] and "again" in notes[1]
    with pytest.raises(ValueError):  # not the database going away: not retried
        outage.call(lambda: (_ for _ in ()).throw(ValueError("bad query")))
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))

    def down() -> str:
        raise _gone()

    with pytest.raises(StorageUnavailableError, match=r"stopped answering .* for 30 s"):
        outage.call(down)
    with pytest.raises(StorageUnavailableError):  # given up: no second wait
        outage.call(lambda: "never called")


def _cluster() -> tuple[str, str]:
    """(version, name) of the local cluster serving SPECBENCH_TEST_POSTGRES_URL."""
    assert URL is not None
    port = str(urlsplit(URL).port or 5432)
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == port:
            return fields[0], fields[1]
    pytest.skip(f"no local PostgreSQL cluster on port {port} to stop")


def _pg(action: str) -> None:
    """Stop (fast: connections are cut, as in a crash or failover) or start it."""
    version, name = _cluster()
    extra = ["-m", "fast"] if action == "stop" else []
    subprocess.run(["pg_ctlcluster", version, name, action, *extra], check=True, timeout=120)


def _running() -> bool:
    version, name = _cluster()
    status = subprocess.run(
        ["pg_ctlcluster", version, name, "status"], capture_output=True, check=False
    )
    return status.returncode == 0


@pytest.fixture
def database() -> Iterator[None]:
    """The test PostgreSQL, running again after the test whatever happens."""
    if URL is None or os.geteuid() != 0:
        pytest.skip("needs SPECBENCH_TEST_POSTGRES_URL and root to stop PostgreSQL")
    _cluster()
    try:
        yield
    finally:
        if not _running():
            _pg("start")


def _args(out: Path, study: str, *extra: str) -> list[str]:
    assert URL is not None
    return ["sweep", "--target", "minimax-m2.7", "--backend", "sim", "--storage", URL,
            "--study-name", study, "--out", str(out), "--trials", "4", "--num-prompts", "4",
            "--max-new-tokens", "24", "--concurrency", "1,4", "--no-report", *extra]  # fmt: skip


def _paused(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """The sweep held inside its second trial; it goes on once the returned file exists."""
    marker, release = tmp_path / "paused", tmp_path / "release"
    env = {**os.environ, RELEASE_ENV: str(release), "COLUMNS": "200"}
    env.pop("SPECBENCH_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, str(PAUSED_SWEEP), str(marker), "2", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stderr is not None
    stream = proc.stderr
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "the sweep never reached its second trial"
        time.sleep(0.05)
    return proc, release, lines


def _measured_once(out: Path) -> None:
    rows = RunDirectory(out).read_results()["trials"]
    done = [r for r in rows if r["state"] == "complete" and r["concurrency"] == 1]
    keys = [r["config_key"] for r in done if r["config_key"] != "baseline"]
    assert len(keys) == 4 and len(set(keys)) == 4, keys


@pytest.mark.postgres
def test_a_stopped_database_is_one_line_and_the_same_command_resumes(
    database: None, tmp_path: Path
) -> None:
    out, study = tmp_path / "run", f"specbench-outage-{uuid.uuid4().hex[:10]}"
    proc, release, lines = _paused(tmp_path, _args(out, study))
    _pg("stop")
    release.touch()
    assert proc.wait(timeout=120) == 1
    errors = [line for line in lines if line.startswith("specbench: error:")]
    assert len(errors) == 1, "".join(lines)
    assert "stopped answering" in errors[0] and "--storage-retry SECONDS" in errors[0]
    assert "OperationalError" in errors[0]  # the first failure, not a later echo of it
    assert "internal error" not in "".join(lines) and "specbench" + "@" not in errors[0]
    _pg("start")
    resumed = run_cli(_args(out, study), tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    _measured_once(out)


@pytest.mark.postgres
def test_storage_retry_waits_for_the_database_to_come_back(database: None, tmp_path: Path) -> None:
    out, study = tmp_path / "run", f"specbench-outage-{uuid.uuid4().hex[:10]}"
    proc, release, lines = _paused(tmp_path, _args(out, study, "--storage-retry", "300"))
    _pg("stop")
    release.touch()
    deadline = time.monotonic() + 120
    while not any("is not answering; retrying" in line for line in lines):
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)
    _pg("start")
    assert proc.wait(timeout=240) == 0, "".join(lines)
    assert any("answers again" in line for line in lines)
    _measured_once(out)
