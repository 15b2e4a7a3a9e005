"""Servers left by a dead worker are reaped on resume, nobody else's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from specbench.harness.liveness import ProcessIdentity, cmdline, start_ticks
from specbench.harness.server_pidfile import (
    SERVERS_DIR,
    pidfile_path,
    reap_stale_servers,
    record_server,
)


def test_a_server_left_by_a_dead_worker_is_reaped(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        owner = ProcessIdentity(ProcessIdentity.current().host, dead.pid, 1).token()
        argv = cmdline(server.pid)
        assert argv is not None
        record_server(pidfile_path(tmp_path, owner), server.pid, argv, owner)
        notes = reap_stale_servers(tmp_path, grace_s=2.0)
        assert any(str(server.pid) in note for note in notes)
        server.wait(10)
        assert not list((tmp_path / SERVERS_DIR).glob("*.json"))
    finally:
        if server.poll() is None:
            server.kill()


def test_a_live_workers_server_and_a_recycled_pid_are_left_alone(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        me = ProcessIdentity.current().token()
        record_server(pidfile_path(tmp_path, me), server.pid, cmdline(server.pid) or [], me)
        assert reap_stale_servers(tmp_path, grace_s=1.0) == []
        assert server.poll() is None
        # Owner gone, but the pid now runs another command line: not ours to kill.
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        owner = ProcessIdentity(ProcessIdentity.current().host, dead.pid, 1).token()
        record_server(pidfile_path(tmp_path, owner), server.pid, ["sglang", "other"], owner)
        reap_stale_servers(tmp_path, grace_s=1.0)
        assert server.poll() is None
        assert start_ticks(server.pid) is not None
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
