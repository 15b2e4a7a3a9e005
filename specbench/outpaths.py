"""Output paths checked before any work: a bad ``--out`` is the user's to fix (exit 2).

A sweep may run for hours before its first write; discovering then that ``--out`` lies
under a regular file, on a read-only filesystem or in a directory the user may not write
would waste the run and end in a traceback. So every command that writes checks its
output location first and reports it as one line, naming the path and the reason.
Permission bits alone prove nothing (root ignores them, and a read-only mount or a
pseudo filesystem such as /proc or /sys refuses root too): the check creates the
directory and a probe file for real, then removes the probe.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from specbench.errors import BadInputError

#: errno -> the reason shown to the user (all of them are fixed by choosing another path).
_REASONS: dict[int, str] = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is not a directory",
    errno.EISDIR: "is a directory",
    errno.ENOENT: "cannot be created there",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
    errno.EEXIST: "exists and is not a directory",
}


def os_error_reason(exc: OSError) -> str:
    """A short reason for an OSError, independent of the locale's strerror."""
    if exc.errno is not None and exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return exc.strerror or type(exc).__name__


def unwritable(option: str, path: Path, exc: OSError) -> BadInputError:
    """The one-line error for an output path the OS refused."""
    return BadInputError(f"{option} {path}: cannot write there ({os_error_reason(exc)})")


def _file_ancestor(path: Path) -> Path | None:
    """The nearest existing ancestor (or the path itself) that is not a directory."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return None if candidate.is_dir() else candidate
        except OSError:
            return None
    return None


def _probe(directory: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=".specbench-probe-", dir=directory)
    os.close(fd)
    Path(name).unlink()


def _ensure_dir(directory: Path, option: str, shown: Path) -> None:
    blocker = _file_ancestor(directory)
    if blocker is not None:
        where = "" if blocker == shown else f" ({blocker} is a file)"
        raise BadInputError(f"{option} {shown}: not a directory{where}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _probe(directory)
    except OSError as exc:
        raise unwritable(option, shown, exc) from None


def check_output_dir(path: Path, option: str = "--out") -> None:
    """Make sure ``path`` is (or can become) a directory this process can write into.

    Creates the directory (and its parents) when missing; leaves nothing else behind.
    """
    _ensure_dir(Path(path), option, Path(path))


def check_output_file(path: Path, option: str = "-o") -> None:
    """Make sure a file can be written at ``path`` (its directory exists and is writable)."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"{option} {path}: is a directory (give a file name)")
    _ensure_dir(path.parent, option, path)


__all__ = ["check_output_dir", "check_output_file", "os_error_reason", "unwritable"]
