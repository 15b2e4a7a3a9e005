"""Reading the model's TOML data files, with errors that name file and field.

Profiles and presets are data, not code, so that a user can copy one, edit a number and
pass the path; every mistake they can make must come back as one line naming the file.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from specbench.errors import FileFormatError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

DATA_PACKAGE = "specbench.model"


def data_dir(kind: str) -> Path:
    """Folder of shipped data files of one kind ("targets" or "hardware")."""
    return Path(str(resources.files(DATA_PACKAGE) / "data" / kind))


def shipped_names(kind: str) -> list[str]:
    return sorted(p.stem for p in data_dir(kind).glob("*.toml"))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileFormatError(path, f"malformed TOML: {exc}") from None


def get_table(path: object, data: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = data.get(field)
    if not isinstance(value, Mapping):
        raise FileFormatError(path, "missing or not a table", field=field)
    return value


def get_str(path: object, data: Mapping[str, Any], field: str, prefix: str = "") -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise FileFormatError(path, "missing or not a non-empty string", field=prefix + field)
    return value


def get_num(
    path: object,
    data: Mapping[str, Any],
    field: str,
    prefix: str = "",
    *,
    default: float | None = None,
    positive: bool = True,
) -> float:
    if field not in data and default is not None:
        return default
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FileFormatError(path, "missing or not a number", field=prefix + field)
    if positive and not value > 0:
        raise FileFormatError(path, f"must be > 0 (got {value})", field=prefix + field)
    if value != value:  # NaN
        raise FileFormatError(path, "must be a number, not NaN", field=prefix + field)
    return float(value)


def get_int(
    path: object,
    data: Mapping[str, Any],
    field: str,
    prefix: str = "",
    *,
    default: int | None = None,
    minimum: int = 1,
) -> int:
    if field not in data and default is not None:
        return default
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FileFormatError(path, "missing or not an integer", field=prefix + field)
    if value < minimum:
        raise FileFormatError(path, f"must be >= {minimum} (got {value})", field=prefix + field)
    return value


def get_str_list(path: object, data: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = data.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FileFormatError(path, "must be a list of strings", field=field)
    return tuple(value)
