"""Pidfiles of launched servers, kept in the run directory, and reaping what a killed
sweep left behind.

Nothing runs when specbench is SIGKILLed (an OOM killer, ``kill -9``, a node drain), so
its server would keep the GPUs and the port. Each launched server is recorded in
``<run dir>/servers/<worker>.json`` while it runs: pid, process group, command line,
start time, host, boot id and the worker that owns it. A resumed sweep reads these
files and stops a server only when everything still matches (same boot, a process with
that pid, start time and command line, and its owning worker gone), so a recycled pid
or another live worker's server is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from specbench.process.liveness import (
    ProcessIdentity,
    boot_id,
    cmdline,
    is_running,
    start_ticks,
)

#: Directory of pidfiles inside a run directory.
SERVERS_DIR = "servers"


@dataclass(frozen=True)
class ServerRecord:
    """What identifies one launched server process group."""

    pid: int
    pgid: int
    argv: list[str]
    start: int | None
    host: str
    boot_id: str | None
    owner: str
    started_at: str
    log: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerRecord | None:
        try:
            argv = data["argv"]
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                return None
            start = data.get("start")
            return cls(
                pid=int(data["pid"]),
                pgid=int(data["pgid"]),
                argv=argv,
                start=int(start) if start is not None else None,
                host=str(data["host"]),
                boot_id=data.get("boot_id"),
                owner=str(data["owner"]),
                started_at=str(data.get("started_at", "")),
                log=str(data.get("log", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def still_running(self) -> bool:
        """Whether the recorded group still runs here, and is certainly the recorded one.

        Either the leader itself runs unchanged (same boot, start time and command
        line), or the leader is gone (or an unreaped zombie) but its group still has members: Linux does not
        hand out a number still in use as a process group id, so those members are the
        recorded server's children (an SGLang scheduler outliving its HTTP server).
        """
        if ProcessIdentity(self.host, self.pid, self.start).alive() is None:
            return False  # another host
        if self.boot_id is not None and boot_id() not in (None, self.boot_id):
            return False
        if is_running(self.pid):
            now = start_ticks(self.pid)
            same = now is not None and (self.start is None or now == self.start)
            return same and cmdline(self.pid) == self.argv
        return group_has_members(self.pgid)


def group_has_members(pgid: int) -> bool:
    """Whether any process of the group is alive and not a zombie (Linux /proc)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _file_name(owner: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in owner) + ".json"


def pidfile_path(run_dir: Path, owner: str) -> Path:
    return Path(run_dir) / SERVERS_DIR / _file_name(owner)


def record_server(path: Path, pid: int, argv: list[str], owner: str, log: str = "") -> None:
    """Write the pidfile of a server just started as the leader of its own group."""
    record = ServerRecord(
        pid=pid,
        pgid=pid,
        argv=list(argv),
        start=start_ticks(pid),
        host=ProcessIdentity.current().host,
        boot_id=boot_id(),
        owner=owner,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        log=log,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def forget_server(path: Path) -> None:
    """Remove the pidfile of a server that was stopped."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _read(path: Path) -> ServerRecord | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return ServerRecord.from_json(data) if isinstance(data, dict) else None


def _kill_group(pgid: int, grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_has_members(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def reap_stale_servers(run_dir: Path, grace_s: float = 15.0) -> list[str]:
    """Stop servers whose owning worker died; one note per pidfile acted on.

    A pidfile of a live owner (another worker sharing the run directory) or of another
    host is left alone; one whose process is gone or is now something else is removed.
    """
    notes: list[str] = []
    directory = Path(run_dir) / SERVERS_DIR
    if not directory.is_dir():
        return notes
    for path in sorted(directory.glob("*.json")):
        record = _read(path)
        if record is None:
            forget_server(path)
            notes.append(f"removed unreadable server pidfile {path.name}")
            continue
        owner = ProcessIdentity.parse(record.owner)
        if owner is None or not owner.gone():
            continue  # a live worker's server, or one on another host
        if record.still_running():
            _kill_group(record.pgid, grace_s)
            notes.append(
                f"stopped server pid {record.pid} (group {record.pgid}) left running by "
                f"stopped worker {record.owner}"
            )
        forget_server(path)
    return notes


__all__ = [
    "SERVERS_DIR",
    "ServerRecord",
    "forget_server",
    "group_has_members",
    "pidfile_path",
    "reap_stale_servers",
    "record_server",
]
