"""A stop signal inside a journal append waits for the append to end."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import optuna
import pytest
from optuna.storages.journal import JournalFileSymlinkLock

from specbench.process.deferred_signals import deferred_signals
from specbench.sweeps.storage import open_storage


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@pytest.fixture
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as a running sweep has it."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_in_the_block_is_delivered_when_it_ends(sigterm_interrupts: None) -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        done.append("after the signal")  # still runs: the signal waits
    assert done == ["after the signal"]
    assert signal.getsignal(signal.SIGTERM) is _interrupt  # the sweep's handler is back


def test_sigterm_while_the_journal_lock_is_released_leaves_a_whole_journal(
    tmp_path: Path, sigterm_interrupts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Optuna's release renames the lock file; a KeyboardInterrupt raised just before
    the rename made it unlink a file that never existed (FileNotFoundError, exit 2)."""
    journal = tmp_path / "study.journal"
    study = optuna.create_study(storage=open_storage(None, journal), study_name="s")
    release = JournalFileSymlinkLock.release

    def signalled_release(self: JournalFileSymlinkLock) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        release(self)

    monkeypatch.setattr(JournalFileSymlinkLock, "release", signalled_release)
    with pytest.raises(KeyboardInterrupt):
        study.set_user_attr("written", True)
    monkeypatch.undo()
    assert not list(tmp_path.glob("study.journal.lock*"))  # no stale lock, no .rename
    lines = journal.read_text().splitlines()
    assert all(json.loads(line) for line in lines)
    reopened = optuna.load_study(storage=open_storage(None, journal), study_name="s")
    assert reopened.user_attrs == {"written": True}
