"""results.json and trials.csv, rebuilt from the study alone.

The Optuna study is the single source of truth: every measured trial keeps its rows in
its user attributes and the baseline lives in the study's, so the results can always be
rebuilt: after a crash, on resume, and when several workers (one per GPU host) share a
PostgreSQL study and each writes its own run directory.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from specbench.errors import FileFormatError
from specbench.harness.engine import Deployment
from specbench.harness.prompts import estimate_tokens
from specbench.harness.served_deployment import printed_deployment
from specbench.rundir.acceptance import acceptance_summary
from specbench.rundir.intervals import RequestBootstrap
from specbench.rundir.layout import (
    STATE_FAILED,
    STATE_RUNNING,
    normalise_trials,
    trials_to_records,
)
from specbench.rundir.lossless import losslessness
from specbench.rundir.trials import TrialRow, speedup
from specbench.spec_config import BASELINE_KEY
from specbench.sweeps.context import SweepContext, locked
from specbench.sweeps.rate_results import rates_section, write_trials_with_rates
from specbench.sweeps.search import (
    ATTR_CONFIG,
    ATTR_LOG_TAIL,
    ATTR_REUSED,
    ATTR_ROWS,
    ATTR_SKIPPED,
    ATTR_SOURCE,
    retried_trials,
    trial_config,
)
from specbench.sweeps.storage import (
    ATTR_ERROR,
    ATTR_WORKER,
    STUDY_SIMULATED,
    baseline_rows,
    redact_url,
)
from specbench.verdict import decide
from specbench.verdict.defaults import named_defaults
from specbench.verdict.feasibility import Feasibility, hardware_profile, with_tp

#: Rewriting results after a trial may cost at most 1/this of the time between rewrites.
RESULTS_WRITE_FACTOR = 4.0


def rows_from_study(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial row, rebuilt from the study: baseline first, then trials by number.

    Trials that measured nothing themselves (reused a measurement, duplicate in flight)
    add no rows, so each configuration appears once; a RUNNING trial appears as
    "running" and an interrupted one as "failed" with its reason, until a later trial
    measures its configuration.
    """
    baseline = baseline_rows(study)
    rows: list[dict[str, Any]] = [baseline[c] for c in sorted(baseline)]
    seen: set[str] = set()
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    retried = retried_trials(study)
    measured = {
        str(t.user_attrs[ATTR_CONFIG])
        for t in trials
        if ATTR_ROWS in t.user_attrs and t.number not in retried
    }
    for trial in trials:
        attrs = trial.user_attrs
        config = trial_config(trial)
        if ATTR_REUSED in attrs or ATTR_SKIPPED in attrs or config is None:
            continue
        if trial.number in retried:
            continue  # superseded by --retry-failed
        if ATTR_ROWS in attrs:
            if config.key in seen:
                continue  # a race measured it twice: keep the first
            seen.add(config.key)
            for row in attrs[ATTR_ROWS]:
                fresh = dict(row)
                base = baseline.get(int(fresh["concurrency"])) or {}
                fresh["speedup"] = (
                    None
                    if fresh.get("state") == STATE_FAILED
                    else speedup(fresh.get("output_tokens_per_s"), base.get("output_tokens_per_s"))
                )
                rows.append(fresh)
            continue
        if trial.state == TrialState.WAITING:
            continue
        state = STATE_RUNNING if trial.state == TrialState.RUNNING else STATE_FAILED
        if state == STATE_FAILED and config.key in measured:
            continue  # an interrupted attempt, measured again later
        row = TrialRow.for_config(
            trial.number,
            config,
            None,
            state=state,
            source=attrs.get(ATTR_SOURCE, ""),
            worker=attrs.get(ATTR_WORKER, ""),
            error=attrs.get(ATTR_ERROR, ""),
            log_tail=attrs.get(ATTR_LOG_TAIL, ""),
            simulated=study.user_attrs.get(STUDY_SIMULATED),
        )
        rows.append(row.as_dict())
    return rows


def baseline_summary(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The baseline's headline numbers per concurrency, for results.json "baseline"."""
    base = frame[frame["config_key"] == BASELINE_KEY]
    fields = ("concurrency", "output_tokens_per_s", "per_stream_tokens_per_s", "ttft_ms_p50")
    out = []
    for record in trials_to_records(base):
        out.append({name: record.get(name) for name in fields})
    return sorted(out, key=lambda r: int(r["concurrency"] or 0))


def rebuild_results(ctx: SweepContext) -> tuple[pd.DataFrame, dict[str, Any]]:
    """trials.csv rows and the results.json body, from the study alone."""
    rows = rows_from_study(ctx.study)
    # Interrupted/running trials have no concurrency: give them the primary so every
    # row satisfies the results schema (config_key, concurrency, state).
    for row in rows:
        if row.get("concurrency") is None:
            row["concurrency"] = ctx.primary
    frame = normalise_trials(rows)
    tp = ctx.hardware.get("tp")
    deployment = printed_deployment(
        ctx.manifest.extra, Deployment.of(ctx.target, tp=tp if isinstance(tp, int) else None)
    )
    engine = ctx.engine
    decision = decide(
        frame,
        list(ctx.concurrencies),
        launch_line=lambda config: engine.launch_line(deployment, config),
        plain_launch=engine.baseline_launch_line(deployment),
        intervals=_request_intervals(ctx),
        defaults=named_defaults(ctx.target, sglang=engine.default_config(ctx.target) is not None),
        feasibility=Feasibility(
            engine.check_config,
            ctx.target,
            hardware_profile(ctx.hardware),
            context_tokens=_context_tokens(ctx),
        ),
        rerun=lambda size: with_tp(ctx.manifest.command, size),
        simulated=ctx.simulated,
        hardware_class=str(ctx.hardware.get("interconnect_class") or "") or None,
    )
    results: dict[str, Any] = {
        "target": ctx.target.name,
        "hardware": ctx.hardware,
        "backend": ctx.backend.name,
        "simulated": ctx.simulated,
        "concurrencies": list(ctx.concurrencies),
        "primary_concurrency": ctx.primary,
        # serve-sim's --time-scale (None otherwise); its requests are timed on its
        # virtual clock, so the scale changes no number here.
        "sim_time_scale": ctx.manifest.extra.get("sim_time_scale"),
        "baseline": baseline_summary(frame),
        **decision.to_json(),
        "study": _study_summary(ctx),
        "losslessness": losslessness(
            ctx.run_dir.iter_requests() if ctx.run_dir.requests_path.exists() else [],
            methods=_methods_by_key(frame),
        ),
        "acceptance": acceptance_summary(ctx.run_dir),
        "trials": trials_to_records(frame),
    }
    rates = rates_section(ctx)
    if rates is not None:
        results["rates"] = rates
    return frame, results


def _context_tokens(ctx: SweepContext) -> int:
    """Tokens of KV a request holds at its end: the prompts' mean estimate (the one the
    simulator uses) plus the output budget; the memory check needs no closer count."""
    counts = [estimate_tokens(p.text) for p in ctx.prompts]
    mean = round(sum(counts) / len(counts)) if counts else 0
    return mean + int(ctx.options.max_new_tokens)


def _methods_by_key(frame: pd.DataFrame) -> dict[str, str]:
    """Each measured configuration's method, by key (trials.csv ``method``)."""
    if "method" not in frame.columns:
        return {}
    rows = frame[["config_key", "method"]].dropna().drop_duplicates()
    return {str(k): str(m) for k, m in zip(rows["config_key"], rows["method"], strict=True) if m}


def _request_intervals(ctx: SweepContext) -> RequestBootstrap | None:
    """The fallback interval for rows without their own: a bootstrap over the run's
    requests.jsonl (read once, when results are rebuilt at the end of a sweep)."""
    path = ctx.run_dir.requests_path
    if not path.exists():
        return None
    try:
        return RequestBootstrap(ctx.run_dir.iter_requests(), seed=ctx.manifest.seed)
    except (OSError, ValueError, FileFormatError):
        return None


def _study_summary(ctx: SweepContext) -> dict[str, Any]:
    trials = ctx.study.get_trials(deepcopy=False)
    workers = sorted(
        {str(t.user_attrs.get(ATTR_WORKER)) for t in trials if t.user_attrs.get(ATTR_WORKER)}
    )
    options = ctx.options
    return {
        "name": ctx.study_name,
        "storage": redact_url(options.storage) if options.storage else "study.journal",
        "strategy": ctx.strategy.name,
        "sampler": ctx.strategy.sampler_label(options.sampler),
        "space": ctx.space.describe(),
        "space_size": len(ctx.space),
        "measured": ctx.search.measured_count(),
        "optuna_trials": len(trials),
        "reused": sum(1 for t in trials if ATTR_REUSED in t.user_attrs),
        "workers": workers,
        "settled": ctx.study.user_attrs.get("settled"),
    }


class WriteBudget:
    """When results are rewritten after a trial: after every one, unless trials finish
    faster than the results can be rebuilt (the in-process simulator, where a trial
    takes a fraction of a second), then as often as keeps the rewriting under
    ``1 / factor`` of the sweep's time. A GPU trial takes minutes; there it is every trial.
    """

    def __init__(self, factor: float = RESULTS_WRITE_FACTOR) -> None:
        self.factor = factor
        self.last_end: float | None = None
        self.last_duration = 0.0

    def due(self) -> bool:
        if self.last_end is None:
            return True
        return time.monotonic() - self.last_end >= self.factor * self.last_duration

    def write(self, ctx: SweepContext) -> None:
        """write_results, timed for the next ``due``."""
        started = time.monotonic()
        try:
            write_results(ctx)
        finally:
            self.last_end = time.monotonic()
            self.last_duration = self.last_end - started


def write_results(ctx: SweepContext) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rebuild and write trials.csv and results.json.

    The study is read inside the lock: of workers sharing this directory, the last to
    write has then also read the latest study.
    """
    with locked(ctx.run_dir.requests_path):
        frame, results = rebuild_results(ctx)
        write_trials_with_rates(ctx, frame, results.get("rates"))
        ctx.run_dir.write_results(results)
    return frame, results
