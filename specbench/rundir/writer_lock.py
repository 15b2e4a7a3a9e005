"""One writer per run directory: a lock the kernel holds for the sweep's whole life.

Two sweeps on one ``--out`` with the directory's own study journal each measure every
configuration and append their requests to one requests.jsonl: the file ends with
every record twice, and started at the same instant the second one read the first
one's half-written manifest as a foreign file. So a sweep takes an exclusive ``flock``
on ``<run>/.specbench.lock`` before it writes anything and keeps it until it ends; a
second sweep is refused at once with one line naming the holder.

Workers that share one study through ``--storage`` (PostgreSQL, or a journal file
named on purpose) coordinate through that storage and write the same run directory
by design; they take the lock *shared*, so they run together while a sweep without
``--storage`` is still refused beside them (and they beside it).

``flock`` is released by the kernel when the process dies, even by SIGKILL, so a
killed sweep never leaves a stale lock: the file it leaves is taken by the next sweep
as it is, nothing to clean by hand before resuming. A sweep that ends removes it.
The descriptor is not inherited by the servers a sweep launches (Python opens files
non-inheritable), so an orphaned server cannot keep the directory locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from specbench.errors import BadInputError

#: The lock file in every run directory a sweep wrote (empty but for its holder's name).
LOCK_NAME = ".specbench.lock"


class RunDirectoryInUseError(BadInputError):
    """Another sweep holds the run directory: the user waits or picks another --out."""


class WriterLock:
    """A held lock on one run directory; ``release`` (or the process's end) frees it."""

    def __init__(self, path: Path, fd: int, shared: bool) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Free the lock and remove the lock file, so a finished run directory holds
        only its own files.

        The file is removed while still held exclusively (a shared holder first tries
        to become the only one; when others still hold it, it is left to them), and
        ``acquire`` checks that the file it locked is still the one at the path, so a
        sweep that opened the old file just before the removal retries on a new one
        instead of locking a file nobody else can see.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.shared:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(self.path, fd):
                self.path.unlink()
        except OSError:
            pass  # other shared holders, or the file is already gone: nothing to remove
        finally:
            os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


#: Times a lock file removed under a sweep that is taking it is opened again.
_REOPENS = 20


def acquire(run_dir: Path, owner: str, *, shared: bool = False) -> WriterLock:
    """Lock ``run_dir`` (which must exist) for ``owner``, or raise RunDirectoryInUseError.

    ``owner`` (``host:pid@start``) is written into the file by an exclusive holder so
    that the refusal can say who holds the directory; a shared holder leaves the name
    of the first worker that wrote it.
    """
    path = run_dir / LOCK_NAME
    for _ in range(_REOPENS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise _in_use(run_dir, path, shared) from None
        if _same_file(path, fd):
            break
        os.close(fd)  # its holder finished and removed it meanwhile: lock the new one
    else:
        raise _in_use(run_dir, path, shared)
    try:
        if not shared or os.fstat(fd).st_size == 0:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{owner}\n".encode(), 0)
    except OSError:
        pass  # the name is for the message only; a full disk must not fail the lock
    return WriterLock(path, fd, shared)


def _in_use(run_dir: Path, path: Path, shared: bool) -> RunDirectoryInUseError:
    holder = ""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        holder = path.read_text(encoding="utf-8").strip()[:200]
    # The holder may not have written its name yet (it locks first, then writes).
    who = f"another sweep ({holder})" if holder.isprintable() and holder else "another sweep"
    why = (
        "that sweep does not share its study through --storage"
        if shared
        else "workers that share one study pass the same --storage"
    )
    return RunDirectoryInUseError(
        f"--out {run_dir} is in use by {who}; wait for it to finish or choose another --out ({why})"
    )


__all__ = ["LOCK_NAME", "RunDirectoryInUseError", "WriterLock", "acquire"]
