"""Versioned JSON and atomic writes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from specbench.errors import FileFormatError
from specbench.schema import SCHEMA_VERSION, read_json, write_json


def test_versioned_json_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.json"
    write_json(path, {"value": 1.5, "bad": math.nan})
    data = read_json(path)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["bad"] is None  # NaN is not JSON
    path.write_text('{"schema_version": "9.0"}')
    with pytest.raises(FileFormatError, match="schema_version"):
        read_json(path)
    path.write_text('{"value": ')
    with pytest.raises(FileFormatError, match="malformed JSON"):
        read_json(path)
    with pytest.raises(FileFormatError, match="no such"):
        read_json(tmp_path / "missing.json")


def test_written_files_are_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_json(path, {"x": 1})
    assert path.stat().st_mode & 0o044 == 0o044  # umask 022 in tests: group/other read
