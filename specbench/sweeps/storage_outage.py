"""A study database that stops answering mid-sweep: one clear line, or a bounded wait.

PostgreSQL restarted under a sweep (an upgrade, a failover, a full disk on the database
host) used to end it as "internal error: StorageInternalError". What the sweep has
measured is safe in the database; what the user needs is to be told the storage went
away, and the choice to wait for it: ``--storage-retry SECONDS`` retries every storage
call that fails on a lost connection until the database has been unreachable that
long, then gives up with the same one line (exit 1). The same command resumes the
sweep once the database is back.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from optuna.storages import BaseStorage, RDBStorage
from sqlalchemy import exc as sqlalchemy_exc

from specbench.errors import RunFailedError

T = TypeVar("T")

#: Seconds between two tries while the database is away (doubling from the first).
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0


class StorageUnavailableError(RunFailedError):
    """The study storage stopped answering (and --storage-retry, if any, ran out)."""


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` (or what Optuna wrapped in it) is the database going away,
    as opposed to a bad query that no wait would fix."""
    for error in (exc, exc.__cause__, exc.__context__):
        if isinstance(error, (sqlalchemy_exc.OperationalError, sqlalchemy_exc.InterfaceError)):
            return True
        if isinstance(error, sqlalchemy_exc.DBAPIError) and error.connection_invalidated:
            return True
    return False


class Outage:
    """The one clock of a storage's outage: started by the first failed call, reset by
    the next call that succeeds, shared by nested calls so waits never add up."""

    def __init__(self, shown: str, retry_s: float, note: Callable[[str], None] | None) -> None:
        self.shown = shown
        self.retry_s = retry_s
        self.note = note
        self.since: float | None = None
        #: The line of the outage once given up: every later call raises it again.
        self.gave_up_with: StorageUnavailableError | None = None

    def call(self, attempt: Callable[[], T]) -> T:
        pause = FIRST_PAUSE_S
        while True:
            if self.gave_up_with is not None:
                raise self.gave_up_with  # the sweep is ending: later calls fail at once
            try:
                value = attempt()
            except StorageUnavailableError:
                raise
            except Exception as exc:
                if not lost_connection(exc):
                    raise
                now = time.monotonic()
                if self.since is None:
                    self.since = now
                    if self.retry_s > 0 and self.note is not None:
                        self.note(
                            f"the study storage {self.shown} is not answering; retrying for "
                            f"up to {self.retry_s:g} s (--storage-retry)"
                        )
                if now - self.since >= self.retry_s:
                    self.gave_up_with = self._error(exc)
                    raise self.gave_up_with from None
                time.sleep(min(pause, self.retry_s - (now - self.since)))
                pause = min(pause * 2, MAX_PAUSE_S)
                continue
            if self.since is not None and self.note is not None:
                self.note(f"the study storage {self.shown} answers again")
            self.since = None
            return value

    def _error(self, exc: BaseException) -> StorageUnavailableError:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        text = str(cause).strip().splitlines()
        detail = f" ({type(cause).__name__}: {text[0][:200] if text else ''})"
        waited = (
            f"for {self.retry_s:g} s (--storage-retry)"
            if self.retry_s > 0
            else "(--storage-retry SECONDS waits for it)"
        )
        return StorageUnavailableError(
            f"the study storage {self.shown} stopped answering{detail} {waited}; the "
            "trials it holds are kept: run the same command to resume once it is back"
        )


def through_outages(
    storage: T,
    *,
    shown: str,
    retry_s: float,
    note: Callable[[str], None] | None,
) -> T:
    """``storage`` (an RDBStorage) with every public call of the storage interface sent
    through one Outage; anything else (a test's stand-in) is returned as it is.

    The wrappers are set on the instance, so Optuna's cache in front of it and its own
    calls between methods all go through them, and it stays an RDBStorage.
    """
    if not isinstance(storage, RDBStorage):
        return storage
    outage = Outage(shown, retry_s, note)
    for name in dir(BaseStorage):
        if not name.startswith("_") and callable(getattr(BaseStorage, name)):
            setattr(storage, name, _through(outage, getattr(storage, name)))
    return storage


def _through(outage: Outage, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return outage.call(lambda: method(*args, **kwargs))

    return call


__all__ = ["Outage", "StorageUnavailableError", "lost_connection", "through_outages"]
