"""The guardian takes a launched server's whole group down with specbench."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from specbench.harness import guardian
from specbench.harness.liveness import pid_exists

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


def test_guardian_kills_the_whole_group_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    """The parent (standing in for specbench) is SIGKILLed: no finally, no atexit runs.
    The guardian must take the server's grandchild down with it."""
    pids = tmp_path / "pids"
    parent_code = textwrap.dedent(
        f"""
        import os, subprocess, sys
        proc = subprocess.Popen(
            [sys.executable, {guardian.__file__!r}, "--parent", str(os.getpid()),
             "--grace", "2", "--", sys.executable, "-c", {TREE!r}],
            stdout=subprocess.PIPE, start_new_session=True,
        )
        grandchild = proc.stdout.readline().strip().decode()
        open({str(pids)!r}, "w").write(f"{{proc.pid}} {{grandchild}}")
        import time; time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.monotonic() + 20
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the guardian never started its command"
        time.sleep(0.05)
    guard_pid, grandchild = (int(p) for p in pids.read_text().split())
    parent.kill()
    parent.wait()
    assert _wait_gone(grandchild), "the server's grandchild outlived specbench"
    assert _wait_gone(guard_pid)


def test_guardian_passes_the_exit_code_through() -> None:
    code = subprocess.run(
        [
            sys.executable,
            guardian.__file__,
            "--parent",
            str(os.getpid()),
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(7)",
        ],
        check=False,
    ).returncode
    assert code == 7
