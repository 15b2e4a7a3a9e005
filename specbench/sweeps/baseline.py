"""The no-speculation baseline: measured once per concurrency per study, shared by all.

A second worker (or a resumed run) reuses the stored rows; if two workers race, the
first rows stored win and both compute speedups against them (results are rebuilt from
the study, so every report agrees).
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from specbench.errors import RunFailedError, ServerError
from specbench.rundir.layout import STATE_COMPLETE
from specbench.rundir.trials import TrialRow, jsonable
from specbench.sweeps.comparison import store_baseline_samples
from specbench.sweeps.context import SweepContext
from specbench.sweeps.measure import measure_loads
from specbench.sweeps.measure_rates import store_baseline_rates
from specbench.sweeps.storage import (
    STUDY_BASELINE,
    STUDY_BASELINE_CLAIM,
    baseline_rows,
    worker_gone,
)

#: Settling time of the baseline claim (see _claim_baseline).
CLAIM_SETTLE_S = 0.5
#: How long a worker waits, beyond a server start, for another worker's baseline.
BASELINE_WAIT_S = 900.0


def ensure_baseline(ctx: SweepContext) -> None:
    """Measure the baseline at every concurrency the study has none for."""
    study = ctx.study
    if all(c in baseline_rows(study) for c in ctx.concurrencies):
        return
    backend = ctx.baseline_backend
    if ctx.options.endpoint is not None and backend is None:
        ctx.progress.note(
            "attached to --endpoint without --baseline-endpoint: no baseline, so no speedup "
            "(tau and tokens/s only)"
        )
        return
    if not _claim_baseline(study, ctx):
        return  # another worker measured it while we waited
    log = ctx.run_dir.logs_dir / "baseline.log"
    started = time.monotonic()
    try:
        measured = measure_loads(
            ctx, backend or ctx.backend, None, -1, "baseline (no speculation)", log
        )
    except ServerError as exc:
        tail = f" | log: {exc.log_tail.strip().splitlines()[-1]}" if exc.log_tail.strip() else ""
        raise RunFailedError(
            f"the baseline (no speculation) failed, so no speedup can be measured: {exc}{tail} "
            f"(full log {log})"
        ) from None
    duration = time.monotonic() - started
    rows = [
        _baseline_row(ctx, metrics, duration / max(len(measured.rows), 1))
        for metrics in measured.rows
    ]
    for row in rows:
        if not row.get("output_tokens_per_s") or not row.get("num_requests"):
            raise RunFailedError(
                f"the baseline (no speculation) produced no successful request at concurrency "
                f"{row['concurrency']}; see {log}"
            )
    store_baseline_samples(study, measured.samples)
    if measured.rates is not None:
        store_baseline_rates(ctx, measured.rates)
    latest = baseline_rows(study)  # another worker may have stored it meanwhile
    merged = {**{int(r["concurrency"]): r for r in rows}, **latest}
    study.set_user_attr(STUDY_BASELINE, [jsonable(merged[c]) for c in sorted(merged)])


def _baseline_row(ctx: SweepContext, metrics: dict[str, Any], duration_s: float) -> dict[str, Any]:
    row = TrialRow.for_config(-1, None, int(metrics["concurrency"]))
    row.update(metrics)
    row.update(
        {
            "state": STATE_COMPLETE,
            "source": "baseline",
            "speedup": 1.0,
            "speedup_ci_low": 1.0,
            "speedup_ci_high": 1.0,
            "predicted_speedup": 1.0,
            "simulated": ctx.simulated,
            "worker": ctx.worker,
            "duration_s": duration_s,
            "error": "",
            "log_tail": "",
        }
    )
    return row.as_dict()


def _claim_baseline(study: optuna.Study, ctx: SweepContext) -> bool:
    """Make sure one worker measures the baseline while the others wait for it.

    Optuna has no lock, so the claim is "write my name, let concurrent writers settle,
    read back": of workers starting together, only the last writer sees its own name.
    A claimer that died (same host, pid gone) or takes longer than a server start plus
    a measurement is taken over. Returns True when this worker must measure.
    """
    me = ctx.worker
    deadline = time.monotonic() + ctx.options.ready_timeout_s + BASELINE_WAIT_S
    waiting_noted = False
    while True:
        if all(c in baseline_rows(study) for c in ctx.concurrencies):
            return False
        claim = study.user_attrs.get(STUDY_BASELINE_CLAIM)
        if claim is None or claim == me or worker_gone(str(claim)) or time.monotonic() > deadline:
            study.set_user_attr(STUDY_BASELINE_CLAIM, me)
            time.sleep(CLAIM_SETTLE_S)
            if study.user_attrs.get(STUDY_BASELINE_CLAIM) == me:
                return True
            continue
        if not waiting_noted:
            ctx.progress.note(f"waiting for worker {claim} to measure the baseline")
            waiting_noted = True
        time.sleep(0.5)
