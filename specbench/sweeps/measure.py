"""Measuring one configuration: one server, every concurrency, rows told to the study."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from specbench.errors import ServerError
from specbench.harness.acceptance_stats import TAU_COUNTERS
from specbench.harness.backend import Backend, LoadFailedError, LoadSpec, Session
from specbench.harness.metrics import summarize, window_samples
from specbench.harness.window import RequestSample, speedup_interval
from specbench.rundir.acceptance import ACCEPTANCE_KIND, acceptance_path
from specbench.rundir.layout import STATE_COMPLETE, STATE_FAILED, STATE_PRUNED
from specbench.rundir.records import RequestRecord, write_records
from specbench.rundir.trials import TrialRow, speedup
from specbench.safe_text import printable
from specbench.schema import write_json
from specbench.spec_config import EAGLE3, SpecConfig, config_key
from specbench.sweeps.budget import Interval, prune_reason
from specbench.sweeps.comparison import baseline_samples, measured_intervals
from specbench.sweeps.context import SweepContext, locked
from specbench.sweeps.measure_rates import (
    RateMeasurement,
    measure_rate_loads,
    rate_objective,
    store_trial_rates,
)
from specbench.sweeps.options import requests_per_load
from specbench.sweeps.search import ConfigSearch, Proposal
from specbench.sweeps.storage import baseline_rows

#: Characters of a failed server's log kept with its trial.
LOG_TAIL_CHARS = 4000


@dataclass
class MeasuredLoads:
    """One server's loads: a metric row per measured concurrency, and what was skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Window samples per concurrency (the baseline stores them for later intervals).
    samples: dict[int, list[RequestSample]] = field(default_factory=dict)
    #: Why the higher concurrencies were not measured; empty when all were.
    prune_reason: str = ""
    #: The request-rate loads, when the sweep has any (measured even when pruned: they
    #: are the loads the user asked about).
    rates: RateMeasurement | None = None


def measure_loads(
    ctx: SweepContext,
    backend: Backend,
    config: SpecConfig | None,
    trial_number: int,
    label: str,
    log_path: Path,
) -> MeasuredLoads:
    """Run every concurrency on one server (lowest first), stopping early when pruned."""
    out = MeasuredLoads()
    name = "baseline" if config is None else f"trial-{trial_number:04d}-{config.key}"
    against = {} if config is None else baseline_samples(ctx.study)
    ctx.progress.phase(f"starting {label}")
    with backend.session(config, log_path=log_path) as session:
        for index, concurrency in enumerate(ctx.concurrencies):
            if index:
                session.flush_cache()
            total = requests_per_load(len(ctx.prompts), concurrency)
            ctx.progress.trial(f"{label} @ concurrency {concurrency}", total)
            row, samples = _measure_load(ctx, session, config, trial_number, concurrency, label)
            low, high = speedup_interval(samples, against.get(concurrency, []))
            row.update(speedup_ci_low=low, speedup_ci_high=high)
            info = _server_info(session)
            if index == 0 and not ctx.engine.in_process:
                # An in-process engine has no server: the manifest describes it.
                ctx.run_dir.write_server_info(name, ctx.engine.trim_server_info(info))
            _record_tau(ctx, row, config, session, info, trial_number)
            out.rows.append(row)
            out.samples[concurrency] = samples
            if config is not None and index == 0 and index + 1 < len(ctx.concurrencies):
                out.prune_reason = _prune_reason(ctx, row, concurrency) or ""
                if out.prune_reason:
                    break
        if ctx.rates is not None:
            session.flush_cache()
            out.rates = measure_rate_loads(ctx, session, config, trial_number, label)
    _note_simulated(ctx, backend)
    return out


def _measure_load(
    ctx: SweepContext,
    session: Session,
    config: SpecConfig | None,
    trial_number: int,
    concurrency: int,
    label: str,
) -> tuple[dict[str, Any], list[RequestSample]]:
    """One load, measured again (up to ``--repeats`` times) while it is flagged noisy."""
    load = LoadSpec(
        concurrency=concurrency,
        prompts=ctx.prompts,
        max_new_tokens=ctx.options.max_new_tokens,
        num_requests=requests_per_load(len(ctx.prompts), concurrency),
        request_timeout_s=ctx.options.request_timeout_s,
        chat_template=ctx.options.apply_chat_template,
    )
    attempt = 0
    while True:
        try:
            records = session.run(load, progress=ctx.progress.requests, stalls=ctx.progress.stalled)
        except LoadFailedError as exc:
            # The requests that finished before the crash are real: keep them.
            _store_requests(ctx, exc.records, trial_number, config_key(config), concurrency)
            raise
        metrics = summarize(records)
        if not metrics.noisy or attempt >= ctx.options.repeats:
            break
        attempt += 1
        ctx.progress.note(
            f"{label} @ concurrency {concurrency} flagged ({metrics.noise_reason}): "
            f"measuring it again ({attempt} of {ctx.options.repeats})"
        )
        session.flush_cache()
    _store_requests(ctx, records, trial_number, config_key(config), concurrency)
    row = dict(metrics.as_row())
    row.update(concurrency=concurrency, remeasured=attempt)
    return row, window_samples(records)


def _server_info(session: Session) -> dict[str, Any]:
    """The server's own description, or {} when it cannot give one right now."""
    try:
        return dict(session.server_info())
    except ServerError:
        return {}


def _record_tau(
    ctx: SweepContext,
    row: dict[str, Any],
    config: SpecConfig | None,
    session: Session,
    info: Mapping[str, Any],
    trial_number: int,
) -> None:
    """tau of one load, and its acceptance summary where the session kept one (vLLM).

    Without per-request stats vLLM's own counters over exactly this load give tau; it
    is then checked like a per-request tau and labelled with its source.
    """
    acceptance = session.last_acceptance if config is not None else None
    counters = None
    if acceptance is not None and acceptance["tau_source"] == TAU_COUNTERS:
        counters = acceptance["tau"]
        row["tau"] = counters
    _resolve_tau(ctx, row, config, info)
    if config is not None and acceptance is not None:
        _store_acceptance(ctx, trial_number, config, int(row["concurrency"]), acceptance)
    if counters is not None:
        row["tau_source"] = TAU_COUNTERS


def _resolve_tau(
    ctx: SweepContext, row: dict[str, Any], config: SpecConfig | None, info: Mapping[str, Any]
) -> None:
    """tau, its source and the server's own average (the engine's cross-check);
    disagreements flag the row."""
    resolved = ctx.engine.resolve_tau(float(row.get("tau", math.nan)), info, config)
    # Below 1 is no measurement (a server's average can claim it): stored, it would make
    # report and gate refuse the whole run (rundir.plausible); the reason stays noted.
    tau = math.nan if resolved.tau < 1.0 - 1e-9 else resolved.tau
    row.update(tau=tau, tau_source=resolved.source, tau_server=resolved.server_tau)
    if resolved.problems:
        reasons = [r for r in (row.get("noise_reason") or "", *resolved.problems) if r]
        row.update(noisy=True, noise_reason="; ".join(reasons))


def _prune_reason(ctx: SweepContext, row: dict[str, Any], concurrency: int) -> str | None:
    """Why this configuration's higher loads are not worth measuring (None: they are)."""
    if not ctx.options.prune:
        return None
    base = baseline_rows(ctx.study).get(concurrency) or {}
    value = speedup(row.get("output_tokens_per_s"), base.get("output_tokens_per_s"))
    if value is None:
        return None
    mine = Interval(value, float(row["speedup_ci_low"]), float(row["speedup_ci_high"]))
    return prune_reason(mine, measured_intervals(ctx.study, concurrency), concurrency)


def _store_requests(
    ctx: SweepContext, records: list[RequestRecord], trial_number: int, key: str, concurrency: int
) -> None:
    for record in records:
        record.trial_number = trial_number
        record.config_key = key
        record.concurrency = concurrency
        record.simulated = record.simulated or ctx.simulated
    with locked(ctx.run_dir.requests_path):
        write_records(
            ctx.run_dir.requests_path, records, compact=True, keep_chunks=ctx.options.keep_chunks
        )


def _store_acceptance(
    ctx: SweepContext,
    trial_number: int,
    config: SpecConfig,
    concurrency: int,
    acceptance: dict[str, Any],
) -> None:
    """One small JSON per trial and concurrency: tau with its source and the
    per-position acceptance the chain model is calibrated on."""
    path = acceptance_path(ctx.run_dir, trial_number, config.key, concurrency)
    write_json(
        path,
        {
            "kind": ACCEPTANCE_KIND,
            "trial_number": trial_number,
            "config_key": config.key,
            "num_steps": config.num_steps,
            "topk": config.topk,
            "num_draft_tokens": config.num_draft_tokens,
            "concurrency": concurrency,
            **acceptance,
        },
    )


def _note_simulated(ctx: SweepContext, backend: Backend) -> None:
    """A launched or attached server may turn out to be serve-sim: from then on every
    number of this run is SIMULATED, and the manifest must say so, with the time scale
    serve-sim ran at (recorded, though its requests are timed on its virtual clock)."""
    changed = False
    if backend.simulated and not ctx.simulated:
        ctx.simulated = True
        ctx.progress.note("[bold yellow]SIMULATED[/]: the server is specbench serve-sim")
        changed = True
    scale = backend.describe().get("sim_time_scale")
    if scale is not None and ctx.manifest.extra.get("sim_time_scale") != scale:
        ctx.manifest.extra["sim_time_scale"] = scale
        changed = True
    if changed:
        ctx.manifest.simulated = ctx.simulated
        ctx.run_dir.write_manifest(ctx.manifest)


def trial_row(ctx: SweepContext, proposal: Proposal, concurrency: int, **values: Any) -> TrialRow:
    """A row of ``proposal`` with what every row of it carries, and the prior's guess
    (none for a method the model does not describe: measured only, never a made-up
    prediction)."""
    if proposal.config.method != EAGLE3:
        return TrialRow.for_config(
            proposal.number,
            proposal.config,
            concurrency,
            source=proposal.source,
            simulated=ctx.simulated,
            worker=ctx.worker,
            **values,
        )
    prediction = ctx.prior.predict(proposal.config, concurrency)
    return TrialRow.for_config(
        proposal.number,
        proposal.config,
        concurrency,
        source=proposal.source,
        simulated=ctx.simulated,
        worker=ctx.worker,
        predicted_tau=prediction.tau,
        predicted_speedup=prediction.speedup,
        **values,
    )


def run_trial(search: ConfigSearch, proposal: Proposal, ctx: SweepContext) -> None:
    """Measure one configuration at every concurrency and tell the study."""
    config = proposal.config
    label = f"trial {proposal.number} {config.key} ({proposal.source})"
    log_path = ctx.run_dir.logs_dir / f"trial-{proposal.number:04d}-{config.key}.log"
    baseline = baseline_rows(search.study)
    started = time.monotonic()
    try:
        measured = measure_loads(ctx, ctx.backend, config, proposal.number, label, log_path)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            search.fail(proposal, "interrupted (Ctrl-C or SIGTERM)", interrupted=True)
        raise
    except ServerError as exc:
        _fail(search, proposal, ctx, exc, time.monotonic() - started)
        return
    except BaseException:
        with contextlib.suppress(Exception):
            search.fail(proposal, "the sweep stopped on an internal error", interrupted=True)
        raise
    duration = time.monotonic() - started
    rows: list[dict[str, Any]] = []
    for metrics in measured.rows:
        concurrency = int(metrics["concurrency"])
        row = trial_row(ctx, proposal, concurrency)
        row.update(metrics)
        base = baseline.get(concurrency) or {}
        row.speedup = speedup(metrics.get("output_tokens_per_s"), base.get("output_tokens_per_s"))
        row.update(
            {
                "state": STATE_COMPLETE,
                "duration_s": duration / len(measured.rows),
                "error": "",
                "log_tail": "",
            }
        )
        rows.append(row.as_dict())
    if measured.prune_reason:
        done = {int(r["concurrency"]) for r in rows}
        for concurrency in ctx.concurrencies:
            if concurrency not in done:
                pruned = trial_row(
                    ctx,
                    proposal,
                    concurrency,
                    state=STATE_PRUNED,
                    prune_reason=measured.prune_reason,
                )
                rows.append(pruned.as_dict())
        ctx.progress.note(f"trial {proposal.number} {config.key}: {measured.prune_reason}")
    objective = None
    if measured.rates is not None:
        store_trial_rates(proposal.trial, measured.rates)
        objective = rate_objective(ctx, measured.rates)
    _tell(search, proposal, ctx, rows, measured.prune_reason, objective)


def _fail(
    search: ConfigSearch, proposal: Proposal, ctx: SweepContext, exc: ServerError, duration: float
) -> None:
    error = " ".join(str(exc).split())
    tail = exc.log_tail[-LOG_TAIL_CHARS:]
    rows = [
        trial_row(
            ctx, proposal, c, state=STATE_FAILED, error=error, log_tail=tail, duration_s=duration
        ).as_dict()
        for c in ctx.concurrencies
    ]
    search.fail(proposal, error, rows=rows, log_tail=tail)
    ctx.progress.note(
        f"[red]trial {proposal.number} {proposal.config.key} failed:[/] {escape(printable(error))}"
    )


def _tell(
    search: ConfigSearch,
    proposal: Proposal,
    ctx: SweepContext,
    rows: list[dict[str, Any]],
    pruned: str = "",
    objective: float | None = None,
) -> None:
    """Complete the trial with its objective (the speedup at the primary concurrency, or
    ``objective`` where the rate loads give one), or fail it when the primary
    concurrency gave nothing usable."""
    primary = next(r for r in rows if r["concurrency"] == ctx.primary)
    value = primary.get("speedup") if objective is None else objective
    if value is None and ctx.options.endpoint is not None:
        value = primary.get("output_tokens_per_s")
    if value is None or not primary.get("num_requests"):
        error = f"no usable measurement at concurrency {ctx.primary} (every request failed?)"
        for row in rows:
            row.update(state=STATE_FAILED, error=error)
        search.fail(proposal, error, rows=rows)
        ctx.progress.note(
            f"[red]trial {proposal.number} {proposal.config.key} failed:[/] {escape(printable(error))}"
        )
        return
    if pruned:
        search.prune(proposal, float(value), rows, pruned)
    else:
        search.complete(proposal, float(value), rows)
