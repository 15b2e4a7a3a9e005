"""Storage URLs: drivers, redaction, journal default."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from specbench.errors import BadInputError
from specbench.sweeps.storage import open_storage, redact_url, with_available_driver


def _drivers(monkeypatch: pytest.MonkeyPatch, *installed: str) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: Any) -> Any:
        if name in ("psycopg", "psycopg2"):
            return real("json") if name in installed else None
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


def test_bare_postgres_url_uses_the_installed_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://u:p@db:5432/s"
    _drivers(monkeypatch, "psycopg2")
    assert with_available_driver(url) == "postgresql+psycopg2://u:p@db:5432/s"
    assert with_available_driver("postgres://db/s") == "postgresql+psycopg2://db/s"
    _drivers(monkeypatch, "psycopg", "psycopg2")
    assert with_available_driver(url) == url
    # Explicit drivers and other databases are left alone.
    assert with_available_driver("postgresql+psycopg2://db/s") == "postgresql+psycopg2://db/s"
    assert with_available_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://alice:s3cret@db:5433/s") == "postgresql://alice:***@db:5433/s"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_default_is_a_journal_in_the_run_directory(tmp_path: Path) -> None:
    journal = tmp_path / "run" / "study.journal"
    open_storage(None, journal)
    assert journal.parent.is_dir()


def test_unknown_database_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="cannot open study storage nosuchdb://x"):
        open_storage("nosuchdb://x", tmp_path / "j")


class _RacingStorage:
    """Stands in for RDBStorage: fails like a worker that lost Optuna's CREATE TABLE
    race ``failures`` times (or with another error), then opens."""

    calls = 0

    def __init__(self, failures: int, message: str) -> None:
        self.failures, self.message = failures, message

    def __call__(self, url: str, engine_kwargs: dict[str, Any]) -> str:
        type(self).calls += 1
        if type(self).calls <= self.failures:
            raise RuntimeError(self.message)
        return "opened"


RACE = (
    "(psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "
    '"pg_type_typname_nsp_index"'
)


def test_a_lost_schema_race_is_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("specbench.sweeps.storage.time.sleep", lambda _s: None)
    _RacingStorage.calls = 0
    monkeypatch.setattr("specbench.sweeps.storage.RDBStorage", _RacingStorage(2, RACE))
    assert open_storage("sqlite:///x.db", tmp_path / "j") == "opened"
    assert _RacingStorage.calls == 3


def test_other_storage_errors_and_a_lasting_race_fail_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("specbench.sweeps.storage.time.sleep", lambda _s: None)
    _RacingStorage.calls = 0
    monkeypatch.setattr("specbench.sweeps.storage.RDBStorage", _RacingStorage(9, "no route"))
    with pytest.raises(BadInputError, match="no route"):
        open_storage("sqlite:///x.db", tmp_path / "j")
    assert _RacingStorage.calls == 1
    _RacingStorage.calls = 0
    monkeypatch.setattr("specbench.sweeps.storage.RDBStorage", _RacingStorage(9, RACE))
    with pytest.raises(BadInputError, match="pg_type_typname_nsp_index"):
        open_storage("sqlite:///x.db", tmp_path / "j")
    assert _RacingStorage.calls == 5
