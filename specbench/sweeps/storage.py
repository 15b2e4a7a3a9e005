"""Where a study lives: a journal file in the run directory, or a shared database.

The embedded default is Optuna's journal file, because it needs no server and survives a
killed process (it is an append-only log). SQLite is deliberately not the default: it
locks badly under parallel workers. Several GPU hosts share one study through an RDB URL,
in practice PostgreSQL, each worker opening it with ``load_if_exists=True``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import get_lock_file
from optuna.trial import FrozenTrial, TrialState

from specbench.errors import BadInputError, FileFormatError
from specbench.process.deferred_signals import deferred_signals
from specbench.process.liveness import ProcessIdentity, is_current
from specbench.safe_text import printable
from specbench.schema import append_whole
from specbench.sweeps.storage_outage import through_outages

#: Trials a dead worker left RUNNING and that nobody can vouch for after this long are
#: failed on resume even when their host cannot be checked (another machine).
STALE_AFTER = timedelta(hours=6)

#: User attributes the sweep stores on every trial it creates.
ATTR_WORKER = "worker"
ATTR_INTERRUPTED = "interrupted"
ATTR_ERROR = "error"

#: Study user attributes: what the study measures, and the baseline all workers share.
STUDY_BASELINE = "baseline_rows"
STUDY_WORKLOAD = "workload_digest"
STUDY_TARGET = "target"
STUDY_SIMULATED = "simulated"
STUDY_BASELINE_CLAIM = "baseline_claimed_by"


def worker_id() -> str:
    """``host:pid@start`` of this process: names who measured a trial and lets a resumed
    run tell a dead local worker's trial from a live remote one. The start time makes a
    recycled pid (common in containers) a different worker."""
    return ProcessIdentity.current().token()


def redact_url(url: str) -> str:
    """The storage URL with any password removed, for the manifest and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_url(spec: str) -> bool:
    return "://" in spec


def with_available_driver(url: str) -> str:
    """Name a PostgreSQL driver that is installed when the URL names none.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3 while 2.0 maps it to
    psycopg2; users write the bare form, so pick whichever driver this environment has
    (and accept Heroku-style ``postgres://``, which SQLAlchemy rejects).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    has_v3 = importlib.util.find_spec("psycopg") is not None
    has_v2 = importlib.util.find_spec("psycopg2") is not None
    if has_v3 or not has_v2:
        return f"postgresql://{rest}"
    return f"postgresql+psycopg2://{rest}"


class _WholeAppendJournal(JournalFileBackend):
    """Optuna's journal file whose appends neither a signal nor a full disk can cut: a
    Ctrl-C or SIGTERM in the middle of one (its lock taken, lines half written, the
    lock's rename) waits for the append to end, and a write refused part-way is undone,
    so the journal holds whole lines and no stale lock."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        # Optuna's own append, except that a write the disk refuses part-way is cut
        # back (schema.append_whole): a full disk leaves a journal that resumes as is.
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with deferred_signals(), get_lock_file(self._lock):
            append_whole(Path(self._file_path), data.encode("utf-8"), sync=True)


def open_storage(
    spec: str | None,
    journal_path: Path,
    *,
    retry_s: float = 0.0,
    note: Callable[[str], None] | None = None,
) -> BaseStorage:
    """Open the study storage: ``spec`` is an RDB URL, a journal file path, or None.

    None uses ``journal_path`` (the run directory's ``study.journal``). Every failure
    (unreachable server, missing driver, bad URL) becomes one BadInputError line,
    because the user fixes it by changing ``--storage``. A database that stops
    answering later is waited for up to ``retry_s`` seconds (``note`` says so), then
    one StorageUnavailableError line (storage_outage).
    """
    if spec is None or not is_url(spec):
        path = journal_path if spec is None else Path(spec)
        check_journal(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(_WholeAppendJournal(str(path)))
        except OSError as exc:
            raise BadInputError(
                f"cannot open the study journal {path}: {exc.strerror or exc}"
            ) from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # A journal cut mid-line (disk full, a copy taken while a sweep wrote) or
            # edited by hand: Optuna replays it in full at open and fails on the bad line.
            raise FileFormatError(
                path,
                f"the Optuna study journal is truncated or corrupt ({type(exc).__name__}: "
                f"{printable(str(exc), 80)}); remove its damaged last line(s) or use a new --out",
            ) from None
    shown = redact_url(spec)
    spec = with_available_driver(spec)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if spec.startswith(("postgresql", "postgres")):
        # Fail within seconds on a closed port or a dead host instead of hanging a sweep.
        engine_kwargs["connect_args"] = {"connect_timeout": 5}
    attempt = 1
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opened = RDBStorage(spec, engine_kwargs=engine_kwargs)
            return through_outages(opened, shown=shown, retry_s=retry_s, note=note)
        except Exception as exc:
            if attempt < SCHEMA_RACE_ATTEMPTS and _lost_schema_race(exc):
                time.sleep(random.uniform(0.2, 1.0) * attempt)
                attempt += 1
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInputError(f"cannot open study storage {shown}: {first}") from None


#: Tries to open an RDB storage whose schema another worker is creating at that moment.
SCHEMA_RACE_ATTEMPTS = 5


def _lost_schema_race(exc: Exception) -> bool:
    """Whether ``exc`` is another worker creating Optuna's tables at the same moment.

    Optuna creates its schema on first open without a lock, so two sweep workers that
    start together on a fresh database collide in CREATE TABLE (PostgreSQL: a unique
    violation on pg_type, or "already exists"; optuna/optuna#1092). Once the winner's
    transaction commits, opening again finds the tables and succeeds.
    """
    text = str(exc)
    return "pg_type_typname_nsp_index" in text or "already exists" in text


def check_journal(path: Path) -> None:
    """Refuse a journal with a line that is not a whole JSON object, naming the file.

    Optuna keeps an unterminated last line as "still being written" and appends after
    it, which corrupts the journal for good a few operations later (as an
    "internal error" far from the cause). A sweep killed mid-write, a full disk or a
    copy taken while a sweep wrote leaves exactly that, so it is caught at open.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BadInputError(
            f"cannot read the study journal {path}: {exc.strerror or exc}"
        ) from None
    if not data:
        return
    lines = data.split(b"\n")
    if lines[-1].strip():
        raise FileFormatError(
            path,
            f"the Optuna study journal is truncated (its last line, line {len(lines)}, is "
            "incomplete); remove that line to resume, or use a new --out",
        )
    for number, line in enumerate(lines[:-1], start=1):
        try:
            ok = isinstance(json.loads(line), dict)
        except (ValueError, RecursionError):
            ok = False
        if not ok:
            raise FileFormatError(
                path,
                f"the Optuna study journal is corrupt at line {number}; "
                "restore it or use a new --out",
            )


def open_study(
    storage: BaseStorage, study_name: str, sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    """Create the study or join it (several workers, or a resumed run)."""
    try:
        return optuna.create_study(
            storage=storage,
            study_name=study_name,
            sampler=sampler,
            direction="maximize",
            load_if_exists=True,
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInputError(f"cannot open study {study_name!r}: {first}") from None


def worker_gone(worker: str) -> bool:
    """True when ``worker`` ran on this host and its process no longer exists.

    A worker on another host is never declared gone here: only time can tell.
    """
    identity = ProcessIdentity.parse(worker)
    return identity is not None and not is_current(worker) and identity.gone()


def is_abandoned(trial: FrozenTrial, *, now: datetime | None = None) -> bool:
    """Whether a RUNNING trial's worker is certainly gone.

    On this host we can check the process; for another host we only trust age, because
    a remote worker may well be measuring right now.
    """
    if trial.state != TrialState.RUNNING:
        return False
    worker = str(trial.user_attrs.get(ATTR_WORKER, ""))
    identity = ProcessIdentity.parse(worker)
    if identity is not None and identity.local:
        return worker_gone(worker)
    started = trial.datetime_start
    if started is None:
        return True
    now = now or datetime.now()
    return now - started > STALE_AFTER


def fail_abandoned_trials(study: optuna.Study) -> list[int]:
    """Mark trials left RUNNING by killed workers as failed (interrupted); their numbers.

    They are not "measured": a resumed run may measure their configuration again.
    """
    failed: list[int] = []
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not is_abandoned(trial):
            continue
        with contextlib.suppress(Exception):  # another worker may have finished it meanwhile
            storage.set_trial_user_attr(trial._trial_id, ATTR_INTERRUPTED, True)
            storage.set_trial_user_attr(
                trial._trial_id,
                ATTR_ERROR,
                f"interrupted: worker {trial.user_attrs.get(ATTR_WORKER, '?')} stopped "
                "before the trial finished",
            )
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed.append(trial.number)
    return failed


def baseline_rows(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """The baseline rows stored in the study, by concurrency."""
    stored = study.user_attrs.get(STUDY_BASELINE) or []
    return {int(r["concurrency"]): dict(r) for r in stored if isinstance(r, dict)}


__all__ = [
    "ATTR_ERROR",
    "ATTR_INTERRUPTED",
    "ATTR_WORKER",
    "STUDY_BASELINE",
    "STUDY_BASELINE_CLAIM",
    "STUDY_SIMULATED",
    "STUDY_TARGET",
    "STUDY_WORKLOAD",
    "baseline_rows",
    "check_journal",
    "fail_abandoned_trials",
    "is_abandoned",
    "is_url",
    "open_storage",
    "open_study",
    "redact_url",
    "with_available_driver",
    "worker_gone",
    "worker_id",
]
