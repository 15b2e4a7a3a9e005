"""Versioned JSON files: every file specbench writes carries ``schema_version``.

Readers check the version before trusting any field, so that a run directory written by
an incompatible release fails with one line naming the file instead of a KeyError deep
inside a report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specbench.errors import FileFormatError

#: Version of every JSON file specbench writes. Bump the major part on an incompatible
#: change; readers accept any file with the same major part.
SCHEMA_VERSION = "1.0"


def schema_major(version: str) -> int:
    """Major part of a schema version string such as ``"1.0"``."""
    return int(str(version).split(".", 1)[0])


def _default(obj: object) -> object:
    # numpy scalars and Paths show up in results; write them as plain JSON values.
    if isinstance(obj, Path):
        return str(obj)
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace NaN/inf by None: JSON has no such numbers and browsers reject them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(payload: Mapping[str, Any], *, indent: int | None = 2) -> str:
    """Serialise a payload, stamping ``schema_version`` first if it is missing."""
    body = {"schema_version": SCHEMA_VERSION, **payload}
    return json.dumps(_clean(body), indent=indent, default=_default, allow_nan=False)


def _read_umask() -> int:
    # The only portable way to read the umask is to set it; done once, at import, before
    # any thread could create a file under the momentary 0.
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temp file and a rename, so an interrupted sweep or render never
    leaves half a file where a reader (report, gate, a browser) would find it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        # mkstemp creates 0600; results, baselines and reports are meant to be shared.
        Path(tmp).chmod(0o666 & ~_UMASK)
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is not None:
            raise
        # A full disk fails inside the temp file's write: name the file being written.
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_whole(path: Path, data: bytes, *, header: bytes = b"", sync: bool = False) -> None:
    """Append ``data`` (whole lines), after ``header`` when the file is empty, so that
    the file ends with a whole line whatever happens: a write the disk refuses part-way (ENOSPC, EDQUOT) is cut back to where it
    began before the error is raised, and a torn last line left by a killed writer is
    dropped before appending, so the next line never glues onto it.

    The caller must be the only writer of ``path`` meanwhile (it holds the file's lock),
    and every byte must reach the disk or none: a JSON-lines reader then never meets
    half a record, and a sweep resumed after space is freed appends to a valid file.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~_UMASK)
    try:
        start = _drop_torn_tail(fd, os.fstat(fd).st_size)
        if start == 0:
            data = header + data
        view, written = memoryview(data), 0
        try:
            while written < len(data):
                written += os.write(fd, view[written:])
            if sync:
                os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)  # frees blocks: needs no space
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


#: Bytes read at a time while looking for the end of the last whole line.
_TAIL_BLOCK = 65536


def _drop_torn_tail(fd: int, size: int) -> int:
    """Cut an unterminated last line off the file open as ``fd``; its new size."""
    end = size
    while end > 0:
        begin = max(0, end - _TAIL_BLOCK)
        block = os.pread(fd, end - begin, begin)
        if end == size and block.endswith(b"\n"):
            return size
        newline = block.rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, begin + newline + 1)
            return begin + newline + 1
        end = begin
    if size:
        os.ftruncate(fd, 0)
    return 0


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """A versioned JSON file, written atomically."""
    write_text_atomic(path, dumps(payload) + "\n")


def read_json(path: Path, *, kind: str = "file") -> dict[str, Any]:
    """Read a specbench JSON file and check its schema version.

    Raises FileFormatError naming the file (and field) for every way the file can be
    wrong: missing, not JSON, not an object, no or incompatible ``schema_version``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(path, f"no such {kind}") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot read {kind}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise FileFormatError(path, f"expected a JSON object, found {type(data).__name__}")
    check_schema_version(path, data)
    return data


def check_schema_version(path: object, data: Mapping[str, Any]) -> None:
    """Fail unless ``data`` carries a schema version this release can read."""
    version = data.get("schema_version")
    if version is None:
        raise FileFormatError(path, "missing", field="schema_version")
    try:
        major = schema_major(str(version))
    except ValueError:
        raise FileFormatError(path, f"not a version: {version!r}", field="schema_version") from None
    if major != schema_major(SCHEMA_VERSION):
        raise FileFormatError(
            path,
            f"schema {version} is not readable by this specbench (reads {SCHEMA_VERSION})",
            field="schema_version",
        )


def require(path: object, data: Mapping[str, Any], field: str, typ: type | tuple[type, ...]) -> Any:
    """Fetch a required field and check its type, naming file and field on failure."""
    if field not in data:
        raise FileFormatError(path, "missing", field=field)
    value = data[field]
    # bool is an int in Python; a hand-edited `true` must not pass as a number.
    if isinstance(value, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise FileFormatError(path, f"expected {_type_name(typ)}, found a boolean", field=field)
    if not isinstance(value, typ):
        raise FileFormatError(
            path, f"expected {_type_name(typ)}, found {type(value).__name__}", field=field
        )
    return value


def _type_name(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__
