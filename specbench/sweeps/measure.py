"""Measuring one configuration: one server, every concurrency, rows told to the study."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from specbench.errors import ServerError
from specbench.harness.acceptance_stats import TAU_COUNTERS
from specbench.harness.backend import Backend, LoadSpec
from specbench.harness.metrics import summarize
from specbench.rundir.acceptance import ACCEPTANCE_KIND, acceptance_path
from specbench.rundir.layout import STATE_COMPLETE, STATE_FAILED
from specbench.rundir.records import RequestRecord, write_records
from specbench.rundir.trials import TrialRow, speedup
from specbench.schema import write_json
from specbench.spec_config import SpecConfig, config_key
from specbench.sweeps.options import requests_per_load
from specbench.sweeps.search import ConfigSearch, Proposal
from specbench.sweeps.setup import SweepContext, locked
from specbench.sweeps.storage import baseline_rows

#: Characters of a failed server's log kept with its trial.
LOG_TAIL_CHARS = 4000


def measure_loads(
    ctx: SweepContext,
    backend: Backend,
    config: SpecConfig | None,
    trial_number: int,
    label: str,
    log_path: Path,
) -> list[dict[str, Any]]:
    """Run every concurrency on one server; one metric row per concurrency."""
    rows: list[dict[str, Any]] = []
    ctx.progress.phase(f"starting {label}")
    with backend.session(config, log_path=log_path) as session:
        for index, concurrency in enumerate(ctx.concurrencies):
            if index:
                session.flush_cache()
            load = LoadSpec(
                concurrency=concurrency,
                prompts=ctx.prompts,
                max_new_tokens=ctx.options.max_new_tokens,
                num_requests=requests_per_load(len(ctx.prompts), concurrency),
                chat_template=ctx.options.apply_chat_template,
            )
            ctx.progress.trial(f"{label} @ concurrency {concurrency}", load.total_requests)
            records = session.run(load, progress=ctx.progress.requests)
            _store_requests(ctx, records, trial_number, config_key(config), concurrency)
            row = dict(summarize(records).as_row())
            row["concurrency"] = concurrency
            if config is not None and session.last_acceptance is not None:
                _store_acceptance(ctx, trial_number, config, concurrency, session.last_acceptance)
                if session.last_acceptance["tau_source"] == TAU_COUNTERS:
                    row["tau"] = session.last_acceptance["tau"]
            rows.append(row)
    _note_simulated(ctx, backend)
    return rows


def _store_requests(
    ctx: SweepContext, records: list[RequestRecord], trial_number: int, key: str, concurrency: int
) -> None:
    for record in records:
        record.trial_number = trial_number
        record.config_key = key
        record.concurrency = concurrency
        record.simulated = record.simulated or ctx.simulated
    with locked(ctx.run_dir.requests_path):
        write_records(ctx.run_dir.requests_path, records)


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
    number of this run is SIMULATED, and the manifest must say so."""
    if backend.simulated and not ctx.simulated:
        ctx.simulated = True
        ctx.progress.note("[bold yellow]SIMULATED[/]: the server is specbench serve-sim")
        ctx.manifest.simulated = True
        ctx.run_dir.write_manifest(ctx.manifest)


def trial_row(ctx: SweepContext, proposal: Proposal, concurrency: int, **values: Any) -> TrialRow:
    """A row of ``proposal`` with what every row of it carries, and the prior's guess."""
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
        metric_rows = measure_loads(ctx, ctx.backend, config, proposal.number, label, log_path)
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
    for metrics in metric_rows:
        concurrency = int(metrics["concurrency"])
        row = trial_row(ctx, proposal, concurrency)
        row.update(metrics)
        base = baseline.get(concurrency) or {}
        row.speedup = speedup(metrics.get("output_tokens_per_s"), base.get("output_tokens_per_s"))
        row.update(
            {
                "state": STATE_COMPLETE,
                "duration_s": duration / len(metric_rows),
                "error": "",
                "log_tail": "",
            }
        )
        rows.append(row.as_dict())
    _tell(search, proposal, ctx, rows)


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
    ctx.progress.note(f"[red]trial {proposal.number} {proposal.config.key} failed:[/] {error}")


def _tell(
    search: ConfigSearch, proposal: Proposal, ctx: SweepContext, rows: list[dict[str, Any]]
) -> None:
    """Complete the trial with its objective at the primary concurrency, or fail it when
    that concurrency gave nothing usable."""
    primary = next(r for r in rows if r["concurrency"] == ctx.primary)
    value = primary.get("speedup")
    if value is None and ctx.options.endpoint is not None:
        value = primary.get("output_tokens_per_s")
    if value is None or not primary.get("num_requests"):
        error = f"no usable measurement at concurrency {ctx.primary} (every request failed?)"
        for row in rows:
            row.update(state=STATE_FAILED, error=error)
        search.fail(proposal, error, rows=rows)
        ctx.progress.note(f"[red]trial {proposal.number} {proposal.config.key} failed:[/] {error}")
        return
    search.complete(proposal, float(value), rows)
