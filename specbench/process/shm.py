"""Shared-memory files a stopped server leaves behind, found and removed.

vLLM's processes talk through POSIX shared memory ring buffers (``/dev/shm/psm_*``,
``vllm/distributed/device_communicators/shm_broadcast.py``) that Python's resource
tracker unlinks when the server exits. When the server has to be killed (SIGKILL after
the grace period, or a crash), the tracker dies with it and the buffers stay: hundreds of
MB of sparse files per server, until the machine reboots. After a server's group is
gone, the files that appeared during its life and that no live process maps are its
leftovers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def shm_files(pattern: str) -> set[str]:
    """Files matching an absolute glob such as ``/dev/shm/psm_*``."""
    path = Path(pattern)
    return {str(p) for p in path.parent.glob(path.name)}


def mapped_files(proc: Path = Path("/proc")) -> set[str]:
    """Paths that some live process has mapped (from /proc/<pid>/maps)."""
    used: set[str] = set()
    for maps in proc.glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                used.add(parts[5].removesuffix(" (deleted)"))
    return used


def remove_orphans(pattern: str, before: set[str]) -> list[str]:
    """Unlink the files matching ``pattern`` that are new since ``before`` and mapped by
    no live process; return what was removed."""
    new = shm_files(pattern) - before
    if not new:
        return []
    orphans = sorted(new - mapped_files())
    for path in orphans:
        with contextlib.suppress(OSError):
            Path(path).unlink()
    return orphans


__all__ = ["mapped_files", "remove_orphans", "shm_files"]
