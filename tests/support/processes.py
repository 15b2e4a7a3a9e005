"""Process trees for the tests of the server guardian, pidfiles and liveness checks."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from specbench.process.liveness import pid_exists

#: A server stand-in: a process tree (it starts a grandchild) that ignores nothing.
TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once ``pid`` has exited (or is a zombie nobody reaped yet) within the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_exists(pid) or (Path(f"/proc/{pid}/stat").exists() and is_zombie(pid)):
            return True
        time.sleep(0.05)
    return False


def is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped (state Z in /proc/PID/stat)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
