"""The sweep's progress on a terminal: start-up work shown, request totals right from 0."""

from __future__ import annotations

import io

from rich.console import Console

from specbench.sweeps.progress import NullProgress, RichProgress


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100, color_system=None), out


def test_startup_phases_show_before_any_trial_and_totals_are_known_at_zero() -> None:
    console, out = _terminal()
    with RichProgress(console) as progress:
        progress.phase("opening the study")
        progress._progress.refresh()
        assert "opening the study" in out.getvalue()
        progress.trial("baseline @ concurrency 8", 16)
        progress._progress.refresh()
        assert "0/16" in out.getvalue()
        progress.requests(16, 16)
        progress._progress.refresh()
        assert "16/16" in out.getvalue()
    # the phase line is hidden once measuring starts; nothing is left on screen
    assert not progress._progress.live.is_started


def test_the_library_default_is_silent() -> None:
    with NullProgress() as progress:
        progress.phase("loading")
        progress.trial("x", 4)
        progress.requests(1, 4)


def test_stalled_requests_show_in_the_request_bar() -> None:
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=False, width=120))
    progress.trial("trial 3 3-4-8 (tpe) @ concurrency 8")
    progress.requests(2, 16)
    progress.stalled(3, 30.0)
    task = progress._progress.tasks[-1]
    assert "3 stalled > 30 s" in task.description and "3-4-8" in task.description
    progress.stalled(0, 30.0)
    assert "stalled" not in progress._progress.tasks[-1].description
    progress.stop()
