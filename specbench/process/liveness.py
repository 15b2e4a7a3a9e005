"""Which process is which: host, pid and the kernel's start time of the process.

A pid alone does not identify a process: after a crash the pid is free for reuse, and in
a container pids are small and reused quickly. Linux records each process's start time
in clock ticks since boot (``/proc/<pid>/stat`` field 22, proc(5)); together with the
boot id (``/proc/sys/kernel/random/boot_id``) the triple host, pid, start time names one
process for the life of the machine. Used to tell a live sweep worker from a dead one on
resume, and to recognise a server that a killed sweep left behind before reaping it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def boot_id() -> str | None:
    """The kernel's id of this boot (Linux), or None elsewhere."""
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), or None when unknown.

    The command name in ``stat`` may hold spaces and parentheses, so the fields are
    counted after its last ``)``: state is field 3, starttime field 22 (proc(5)).
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str] | None:
    """The argument vector of ``pid`` (Linux), or None when it cannot be read."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # a zombie or a kernel thread
    return [
        part.decode("utf-8", errors="surrogateescape") for part in raw.rstrip(b"\0").split(b"\0")
    ]


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists (someone else's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie.

    A killed process stays a zombie until its parent reaps it, and where the init of a
    container or VM does not reap re-parented orphans that is forever: its pid, start
    time and group id stay in /proc while it runs nothing.
    """
    return pid_exists(pid) and process_state(pid) not in ("Z", "X")


@dataclass(frozen=True)
class ProcessIdentity:
    """One process on one machine: host, pid and (where known) its start time."""

    host: str
    pid: int
    start: int | None = None

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        return cls(socket.gethostname(), pid, start_ticks(pid))

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls.of(os.getpid())

    def token(self) -> str:
        """``host:pid@start`` (or ``host:pid`` when the start time is unknown)."""
        suffix = f"@{self.start}" if self.start is not None else ""
        return f"{self.host}:{self.pid}{suffix}"

    @classmethod
    def parse(cls, token: str) -> ProcessIdentity | None:
        """The identity in a token written by :meth:`token` (or an older ``host:pid``)."""
        host, sep, rest = token.rpartition(":")
        if not sep or not host:
            return None
        pid_text, _, start_text = rest.partition("@")
        if not pid_text.isdigit() or (start_text and not start_text.isdigit()):
            return None
        return cls(host, int(pid_text), int(start_text) if start_text else None)

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """True/False for a process of this host; None for another host (cannot tell).

        A pid that exists but started at another time than recorded is a different
        process that reused the pid: the recorded one is gone.
        """
        if not self.local:
            return None
        if not is_running(self.pid):
            return False
        if self.start is None:
            return True
        now = start_ticks(self.pid)
        return now is None or now == self.start

    def gone(self) -> bool:
        """Certainly dead: a process of this host that no longer runs."""
        return self.alive() is False


def is_current(token: str) -> bool:
    """Whether ``token`` names this very process."""
    me = ProcessIdentity.current()
    other = ProcessIdentity.parse(token)
    return other is not None and (other.host, other.pid) == (me.host, me.pid)


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (R, S, Z...), or None when unknown."""
    with contextlib.suppress(OSError, IndexError):
        stat = (_PROC / str(pid) / "stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0]
    return None


__all__ = [
    "ProcessIdentity",
    "boot_id",
    "cmdline",
    "is_current",
    "is_running",
    "pid_exists",
    "process_state",
    "start_ticks",
]
