"""Servers left by a dead worker are reaped on resume, nobody else's."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from specbench.process.liveness import ProcessIdentity, cmdline, process_state, start_ticks
from specbench.process.server_pidfile import (
    SERVERS_DIR,
    group_has_members,
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


_LEADER = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("ready", flush=True)
sys.stdin.readline()
"""


def test_a_group_whose_leader_is_an_unreaped_zombie_is_reaped(tmp_path: Path) -> None:
    """A guardian killed with specbench stays a zombie where init does not reap orphans;
    its pid still exists with an empty command line, and its server child still runs."""
    leader = subprocess.Popen(
        [sys.executable, "-c", _LEADER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert leader.stdout is not None and leader.stdout.readline().strip() == "ready"
        argv = cmdline(leader.pid)
        assert argv is not None
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        owner = ProcessIdentity(ProcessIdentity.current().host, dead.pid, 1).token()
        record_server(pidfile_path(tmp_path, owner), leader.pid, argv, owner)
        assert leader.stdin is not None
        leader.stdin.close()  # the leader exits; nobody waits for it yet
        deadline = time.monotonic() + 30.0
        while process_state(leader.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)  # polls the state asserted next
        assert process_state(leader.pid) == "Z"
        assert group_has_members(leader.pid)  # the server child outlives its leader
        notes = reap_stale_servers(tmp_path, grace_s=5.0)
        assert any(str(leader.pid) in note for note in notes), notes
        assert not group_has_members(leader.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
