"""One sweep, end to end: set up, baseline, measure, results.

``run_sweep`` reads as the table of contents; each step lives in its own module
(``setup``, ``baseline``, ``measure``, ``results``). Requests are the one output not
rebuilt from the study: each worker appends the requests it measured to its own
requests.jsonl.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from specbench.errors import RunFailedError, SpecbenchError
from specbench.rundir.layout import STATE_COMPLETE, RunDirectory
from specbench.spec_config import BASELINE_KEY
from specbench.sweeps.baseline import ensure_baseline
from specbench.sweeps.context import SweepContext
from specbench.sweeps.in_loop import CalibrationLoop
from specbench.sweeps.launch_plan import launch_estimate
from specbench.sweeps.measure import run_trial
from specbench.sweeps.options import SweepOptions, check_options
from specbench.sweeps.progress import NullProgress, SweepProgress
from specbench.sweeps.ramp import check_ramp_backend, measure_ramp
from specbench.sweeps.results import WriteBudget, write_results
from specbench.sweeps.resume import prepare_resume
from specbench.sweeps.setup import set_up
from specbench.sweeps.storage import ATTR_WORKER

#: Renders the report of a run directory and returns its path (the CLI passes
#: ``specbench.report.html.render_report``; the sweep itself does not import the report).
RenderReport = Callable[[Path], Path]


@dataclass
class SweepOutcome:
    """Where the results are and what this run added; the files are the real output."""

    run_dir: RunDirectory
    results: dict[str, Any]
    trials: pd.DataFrame
    report_path: Path | None
    simulated: bool
    backend: str
    measured_now: int
    measured_total: int
    notes: list[str] = field(default_factory=list)


def run_sweep(
    options: SweepOptions,
    progress: SweepProgress | None = None,
    *,
    render_report: RenderReport | None = None,
) -> SweepOutcome:
    """Run (or resume, or join) one sweep and return where its results are.

    Raises BadInputError for anything the user must fix (exit 2) and RunFailedError
    when the baseline cannot be measured (exit 1). KeyboardInterrupt propagates after
    the running trial is marked failed and results.json/trials.csv are written.
    """
    check_options(options)
    ctx = set_up(options, progress or NullProgress())
    try:
        return _run(ctx, options, render_report)
    finally:
        ctx.run_dir.release_writing_lock()  # taken by set_up: one writer at a time


def _run(
    ctx: SweepContext, options: SweepOptions, render_report: RenderReport | None
) -> SweepOutcome:
    """The sweep once its run directory is locked and its study open."""
    prepare_resume(ctx)
    measured_now = 0
    interrupted = False
    check_ramp_backend(ctx)
    try:
        ensure_baseline(ctx)
        _note_measured_launch(ctx)
        measured_now = _measure(ctx)
        if options.ramp or options.adaptive:
            # After the search: the ramp's candidates come from its results.
            _, searched = write_results(ctx)
            measure_ramp(ctx, searched)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        ctx.progress.stop()
        try:
            frame, results = write_results(ctx)
        finally:
            _close_backends(ctx)
        if interrupted:
            ctx.progress.note(
                f"interrupted: {ctx.search.measured_count()} measured configuration(s) are "
                f"kept in {ctx.run_dir.path}; run the same command with --out "
                f"{ctx.run_dir.path} to resume"
            )
    report_path = _report(ctx, render_report) if options.report else None
    _require_a_completed_config(ctx, frame)
    return SweepOutcome(
        run_dir=ctx.run_dir,
        results=results,
        trials=frame,
        report_path=report_path,
        simulated=ctx.simulated,
        backend=ctx.backend.name,
        measured_now=measured_now,
        measured_total=ctx.search.measured_count(),
        notes=ctx.notes,
    )


def _measure(ctx: SweepContext) -> int:
    """Propose and measure configurations until the study has enough, the strategy runs
    out, or the budget stops it; returns how many this worker measured."""
    search, total, budget = ctx.search, ctx.total_target, ctx.options.budget_minutes
    ctx.progress.set_total(total, min(search.measured_count(), total))
    started = time.monotonic()
    measured_now = 0
    results_due = WriteBudget()
    calibration = CalibrationLoop.start(ctx)
    if calibration is not None and calibration.step():
        return 0  # a resumed sweep that had settled
    while True:
        others = [t for t in search.in_flight() if t.user_attrs.get(ATTR_WORKER) != ctx.worker]
        if search.measured_count() + len(others) >= total:
            break
        # The budget stops *starting* trials; one always runs, or a budget shorter than
        # the baseline would leave nothing to show.
        if budget is not None and measured_now > 0 and time.monotonic() - started > budget * 60:
            ctx.progress.note(f"--budget-minutes {budget:g} reached; stopping")
            break
        proposal = search.propose()
        if proposal is None:
            break
        run_trial(search, proposal, ctx)
        measured_now += 1
        ctx.progress.advance(min(search.measured_count(), total))
        if calibration is not None and calibration.step():
            break
        if results_due.due():
            results_due.write(ctx)  # so that a SIGKILLed sweep still leaves its results
    return measured_now


def _note_measured_launch(ctx: SweepContext) -> None:
    """The wall-time estimate again, with the baseline server's real launch time."""
    launched: list[float] = list(getattr(ctx.backend, "launch_times_s", None) or [])
    if not launched or ctx.options.backend_instance is not None:
        return
    remaining = max(0, ctx.total_target - ctx.search.measured_count())
    estimate = launch_estimate(
        ctx.prior,
        ctx.concurrencies,
        len(ctx.prompts),
        ctx.options.max_new_tokens,
        remaining,
        launch_s=launched[0],
        launch_source="measured",
        with_baseline=False,
    )
    ctx.progress.note(f"remaining: {estimate.describe()}")


def _close_backends(ctx: SweepContext) -> None:
    for backend in (ctx.backend, ctx.baseline_backend):
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()


def _report(ctx: SweepContext, render: RenderReport | None) -> Path | None:
    """report.html; a report that cannot be drawn is a note, never a failed sweep."""
    if render is None:
        return None
    try:
        return render(ctx.run_dir.path)
    except SpecbenchError as exc:
        ctx.notes.append(f"report.html skipped: {exc}")
        return None


def _require_a_completed_config(ctx: SweepContext, frame: pd.DataFrame) -> None:
    speculative = frame[frame["config_key"] != BASELINE_KEY]
    if not speculative["state"].eq(STATE_COMPLETE).any():
        raise RunFailedError(
            f"no configuration completed (failed ones are recorded in "
            f"{ctx.run_dir.results_path}; server logs in {ctx.run_dir.logs_dir})"
        )


__all__ = ["RenderReport", "SweepOutcome", "run_sweep"]
