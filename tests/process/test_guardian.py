"""The guardian takes a launched server's whole group down with specbench."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from specbench.process import guardian
from tests.support.processes import TREE, wait_gone


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
    assert wait_gone(grandchild), "the server's grandchild outlived specbench"
    assert wait_gone(guard_pid)


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
