"""A tiny parent for a launched server: the whole server group dies with specbench.

Linux can signal a child when its parent dies (``prctl(PR_SET_PDEATHSIG)``, prctl(2)),
but only that one child: an SGLang server is a tree (HTTP server, one scheduler per GPU,
a detokenizer), and its grandchildren would survive a SIGKILLed specbench holding the
GPUs and the port. So specbench starts this guardian as the leader of a new process
group; the guardian asks for SIGTERM on its parent's death, starts the real command in
its own group, and when its parent dies (or it is told to stop) it terminates the whole
group: SIGTERM, a grace period, then SIGKILL. Where prctl does not exist the guardian
notices the death by polling ``getppid()`` (an orphan is re-parented).

Run as a script by path (stdlib only, no package import) so that it starts in tens of
milliseconds::

    python guardian.py --parent PID --grace SECONDS -- COMMAND [ARGS...]

It exits with the command's exit code (128 + signal number when a signal ended it).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

#: prctl(2) option: deliver a signal to this process when its parent thread exits.
PR_SET_PDEATHSIG = 1
#: Seconds between two checks of the parent when prctl is unavailable (and as a backstop).
POLL_S = 0.25


def set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _members(pgid: int, *, running_only: bool = False) -> list[int]:
    """Pids of the group's processes other than this one (zombies left out on request)."""
    me = os.getpid()
    out: list[int] = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return out
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        zombie = len(fields) > 0 and fields[0] in ("Z", "X")
        if len(fields) > 2 and fields[2] == str(pgid) and not (running_only and zombie):
            out.append(int(entry.name))
    return out


def stop_group(child: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM every process of the group but this one, SIGKILL what remains after grace."""
    pgid = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group signal reaches us too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        child.poll()
        if child.returncode is not None and not _members(pgid, running_only=True):
            return
        time.sleep(0.02)
    child.poll()
    for pid in _members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5.0)


class _StopSignalError(Exception):
    """Raised by the signal handler: stop the group now."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopSignalError


def exit_code(returncode: int | None) -> int:
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


def run(argv: Sequence[str], parent: int, grace_s: float) -> int:
    """Start ``argv`` and watch it and the parent; the exit code to leave with."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _raise_stop)
    set_parent_death_signal(signal.SIGTERM)
    child: subprocess.Popen[bytes] | None = None
    try:
        # The parent may have died before prctl took effect: then nobody would signal us.
        if os.getppid() != parent:
            return 1
        child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL)
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(POLL_S)
                break
            if os.getppid() != parent:
                raise _StopSignalError
    except _StopSignalError:
        if child is not None:
            stop_group(child, grace_s)
    except OSError as exc:
        print(f"specbench guardian: cannot start {argv[0]!r}: {exc.strerror or exc}", flush=True)
        return 127
    finally:
        if child is not None and child.returncode is None:
            stop_group(child, 0.0)
    return exit_code(child.returncode if child is not None else None)


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guardian", description=__doc__)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--grace", type=float, default=15.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("no command")
    return run(command, ns.parent, ns.grace)


if __name__ == "__main__":
    sys.exit(main())
