"""Which process is which: host, pid and start time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from specbench.harness.liveness import ProcessIdentity, pid_exists

#: A server stand-in: a process tree (it starts a grandchild) that ignores nothing.
TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_exists(pid) or (Path(f"/proc/{pid}/stat").exists() and _zombie(pid)):
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


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
