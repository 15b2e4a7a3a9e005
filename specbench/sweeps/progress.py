"""Progress of a sweep on stderr: a trials bar and a requests bar inside the trial.

Kept behind a tiny interface so the runner stays testable and silent when used as a
library (``NullProgress``), and stdout stays clean for ``--json``.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class SweepProgress:
    """No-op base: what the runner reports. Subclasses draw it."""

    def __enter__(self) -> SweepProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def note(self, text: str) -> None:
        """One line for the user (rich markup allowed)."""

    def phase(self, text: str) -> None:
        """Start-up work under way (loading the model, opening the study, measuring the
        baseline): shown as a spinner so that the first seconds are not silent."""

    def set_total(self, total: int, done: int = 0) -> None:
        """Configurations this run aims to have measured, and how many already are."""

    def trial(self, label: str, total: int | None = None) -> None:
        """A new load started (label names the configuration and the concurrency);
        ``total`` is the number of requests it will measure, when known."""

    def requests(self, done: int, total: int) -> None:
        """Requests finished inside the current load."""

    def advance(self, done: int) -> None:
        """Configurations measured so far in the study."""

    def stalled(self, count: int, after_s: float) -> None:
        """Requests of the current load in flight for longer than ``after_s`` seconds."""

    def stop(self) -> None:
        """Leave the terminal clean."""


class NullProgress(SweepProgress):
    """Silent; for library use, benchmarks and tests."""


class RichProgress(SweepProgress):
    """Rich bars on stderr; notes print above the bars."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._trials: TaskID | None = None
        self._requests: TaskID | None = None
        self._phase: TaskID | None = None
        self._label = ""
        self._started = False

    def __enter__(self) -> RichProgress:
        self._ensure()
        return self

    def _ensure(self) -> None:
        # Off a terminal (CI logs, tests) nothing is drawn, so no refresh thread is
        # started either: it would only compete with the load generator for the CPU.
        if not self._started and self.console.is_terminal:
            self._progress.start()
            self._started = True

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def phase(self, text: str) -> None:
        self._ensure()
        if self._phase is None:
            self._phase = self._progress.add_task(text, total=None)
        else:
            self._progress.update(self._phase, description=text, visible=True)

    def _end_phase(self) -> None:
        if self._phase is not None:
            self._progress.update(self._phase, visible=False)

    def set_total(self, total: int, done: int = 0) -> None:
        self._ensure()
        self._end_phase()
        if self._trials is None:
            self._trials = self._progress.add_task("configurations", total=total, completed=done)
        else:
            self._progress.update(self._trials, total=total, completed=done)

    def trial(self, label: str, total: int | None = None) -> None:
        self._ensure()
        self._end_phase()
        self._label = label
        if self._requests is None:
            self._requests = self._progress.add_task(label, total=total)
        else:
            self._progress.reset(self._requests, description=label, total=total)

    def requests(self, done: int, total: int) -> None:
        if self._requests is not None:
            self._progress.update(self._requests, completed=done, total=total)

    def advance(self, done: int) -> None:
        if self._trials is not None:
            self._progress.update(self._trials, completed=done)

    def stalled(self, count: int, after_s: float) -> None:
        if self._requests is None:
            return
        suffix = f" [bold red]{count} stalled > {after_s:g} s[/]" if count else ""
        self._progress.update(self._requests, description=escape(self._label) + suffix)

    def stop(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False


__all__ = ["NullProgress", "RichProgress", "SweepProgress"]
