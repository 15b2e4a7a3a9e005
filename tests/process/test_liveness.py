"""Which process is which: host, pid and start time."""

from __future__ import annotations

import subprocess
import sys

from specbench.process.liveness import ProcessIdentity, pid_exists


def test_identity_round_trips_and_detects_a_dead_process() -> None:
    me = ProcessIdentity.current()
    parsed = ProcessIdentity.parse(me.token())
    assert parsed == me and me.alive() is True
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert ProcessIdentity.of(proc.pid).gone() or not pid_exists(proc.pid)
    old_form = ProcessIdentity.parse(f"{me.host}:{proc.pid}")
    assert old_form is not None and old_form.gone()


def test_a_reused_pid_with_another_start_time_is_gone() -> None:
    me = ProcessIdentity.current()
    assert me.start is not None
    assert ProcessIdentity(me.host, me.pid, me.start + 1).gone()
    assert ProcessIdentity("another-host", 1, None).alive() is None
