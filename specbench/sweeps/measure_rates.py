"""Measuring one server's request-rate loads: the rates of the plan, each summarised.

The baseline runs first. With ``--load sweep`` it also measures the burst that fixes the
saturation rate, and the rates spread up to it are stored in the study, so every
configuration (every worker, every resume) is measured at the same rates with the same
send times. With objectives and ``--load sweep`` each configuration's highest rate within
them is found by bisection, starting from the bracket its evenly spaced loads already
give. Requests go to ``rate_requests.jsonl``, apart from the closed-loop requests that
the existing per-concurrency views and intervals read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specbench.harness.backend import Session
from specbench.harness.loads import RateLoad, RateRun
from specbench.harness.rate_metrics import RateSummary, summarize_rate
from specbench.harness.rate_search import saturation_rate, slo_rate
from specbench.limits import MAX_REQUEST_RATE
from specbench.rundir.records import RequestRecord, write_records
from specbench.rundir.trials import jsonable
from specbench.spec_config import BASELINE_KEY, SpecConfig, config_key
from specbench.sweeps.context import SweepContext, locked
from specbench.sweeps.rate_plan import RatePlan

#: Study attributes: the baseline's rate rows, its SLO-rate, and the saturation rate a
#: ``--load sweep`` spreads its rates up to.
STUDY_BASELINE_RATES = "baseline_rate_rows"
STUDY_BASELINE_SLO_RATE = "baseline_slo_rate"
STUDY_SATURATION = "baseline_saturation_per_s"
#: Trial attributes: a configuration's rate rows and its SLO-rate.
ATTR_RATE_ROWS = "rate_rows"
ATTR_SLO_RATE = "slo_rate"
#: Where the rate loads' requests are kept, in the run directory.
RATE_REQUESTS_FILE = "rate_requests.jsonl"
#: The SLO-rate bisection searches up to this multiple of the baseline's saturation
#: rate: a speculative configuration may serve more than the baseline within an SLO.
SLO_SEARCH_TOP = 2.0
#: Requests of the burst that fixes a ``--load sweep``'s saturation rate, at least: a
#: burst only saturates a server whose running batch it fills (a burst of 32 measured
#: 5 req/s on the simulated minimax-m2.7 default, whose baseline serves 13 at 15 offered).
SATURATION_BURST = 256
#: The SLO-rate search doubles its top this many times at most while the top still
#: meets every objective.
SLO_TOP_DOUBLINGS = 3
#: Closed-loop warm-up requests before each rate load (short answers).
RATE_WARMUP_REQUESTS = 2


#: Measures one rate load on the session under way: (load, keep its requests, request
#: count or None for the plan's) -> its summary.
Measure = Callable[[RateLoad, bool, "int | None"], RateSummary]


@dataclass
class RateMeasurement:
    """One server's rate loads: a row per load, and its SLO-rate where one was sought."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    slo_rate: dict[str, Any] | None = None


def rate_requests_path(ctx: SweepContext) -> Path:
    return ctx.run_dir.path / RATE_REQUESTS_FILE


def measure_rate_loads(
    ctx: SweepContext, session: Session, config: SpecConfig | None, trial_number: int, label: str
) -> RateMeasurement:
    """Every rate load of the plan on ``session`` (lowest first), summarised."""
    plan = ctx.rates
    assert plan is not None
    out = RateMeasurement()

    def measure(load: RateLoad, keep: bool = True, count: int | None = None) -> RateSummary:
        run = _rate_run(ctx, plan, load, count or plan.requests_for(load))
        ctx.progress.trial(f"{label} @ {load.label}", len(run.prompts))
        result = session.run_rate(run, progress=ctx.progress.requests)
        summary = summarize_rate(result, load, plan.objectives)
        if keep:  # a burst and a bisection step overload on purpose: no notes
            for flag in summary.flags:
                ctx.progress.note(f"{label} @ {load.label}: {flag}")
            _store(ctx, result.records, result.due_s, result.sent_s, trial_number, config, load)
        return summary

    loads = _plan_loads(ctx, plan, measure)
    for load in loads:
        out.rows.append(rate_row(measure(load), load, config, trial_number))
    if plan.objectives and plan.sweep is not None:
        out.slo_rate = _bisect(ctx, plan, measure, out.rows, loads)
    elif plan.objectives:
        out.slo_rate = measured_slo_rate(out.rows)
    return out


def _rate_run(ctx: SweepContext, plan: RatePlan, load: RateLoad, count: int) -> RateRun:
    prompts = ctx.prompts
    n = len(prompts)
    return RateRun(
        load=load,
        prompts=[prompts[i % n] for i in range(count)],
        max_new_tokens=ctx.options.max_new_tokens,
        request_timeout_s=ctx.options.request_timeout_s,
        warmup_prompts=[prompts[(n - 1 - i) % n] for i in range(RATE_WARMUP_REQUESTS)],
        warmup_tokens=min(16, ctx.options.max_new_tokens),
        chat_template=ctx.options.apply_chat_template,
    )


def _plan_loads(ctx: SweepContext, plan: RatePlan, measure: Measure) -> list[RateLoad]:
    """The plan's rates; for ``--load sweep`` spread up to the stored saturation rate,
    measured here (a burst, every request due at once) when the study has none yet."""
    if plan.sweep is None:
        return list(plan.loads)
    stored = ctx.study.user_attrs.get(STUDY_SATURATION)
    if not isinstance(stored, (int, float)):
        sweep = plan.sweep
        stored = saturation_rate(
            lambda load: measure(load, False, max(plan.requests_per_load, SATURATION_BURST)),
            seed=sweep.seed,
            max_concurrency=sweep.max_concurrency,
        )
        ctx.study.set_user_attr(STUDY_SATURATION, float(stored))
        ctx.progress.note(
            f"saturation rate (a burst of {plan.requests_per_load}): {stored:.3g} req/s"
        )
    return plan.sweep.loads_up_to(float(stored))


def _bisect(
    ctx: SweepContext,
    plan: RatePlan,
    measure: Measure,
    rows: list[dict[str, Any]],
    loads: list[RateLoad],
) -> dict[str, Any]:
    """The highest rate within every objective, between the evenly spaced loads' bracket."""
    sweep = plan.sweep
    assert sweep is not None
    saturation = float(ctx.study.user_attrs[STUDY_SATURATION])
    met = [float(r["rate_per_s"]) for r in rows if r.get("slo_met")]
    missed = [float(r["rate_per_s"]) for r in rows if r.get("slo_met") is False]
    low = max((m for m in met if not missed or m < min(missed)), default=0.0)
    high = min(missed) if missed else None

    def make(rate: float) -> RateLoad:
        return RateLoad(rate, sweep.arrival, sweep.seed, sweep.max_concurrency)

    top = SLO_SEARCH_TOP * saturation
    found = slo_rate(
        lambda load: measure(load, False, None),
        make,
        plan.objectives,
        top,
        known_low=low,
        known_high=high,
    )
    for _ in range(SLO_TOP_DOUBLINGS):
        if not found.at_top or 2 * top > MAX_REQUEST_RATE:
            break
        top *= 2
        found = slo_rate(
            lambda load: measure(load, False, None), make, plan.objectives, top, known_low=top / 2
        )
    return {
        "rate_per_s": found.rate_per_s,
        "high_per_s": found.high_per_s,
        "at_top": found.at_top,
        "method": "bisection",
        "measured_rates": [s.offered_rate_per_s for s in found.measured],
    }


def measured_slo_rate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest named rate within every objective, every lower one within them too
    (a lower bound: the true SLO-rate lies between it and the next rate measured)."""
    ordered = sorted(rows, key=lambda r: float(r["rate_per_s"]))
    best, high = 0.0, None
    for row in ordered:
        if not row.get("slo_met"):
            high = float(row["rate_per_s"])
            break
        best = float(row["rate_per_s"])
    return {
        "rate_per_s": best,
        "high_per_s": high,
        "at_top": high is None,
        "method": "measured rates",
        "measured_rates": [float(r["rate_per_s"]) for r in ordered],
    }


def rate_row(
    summary: RateSummary, load: RateLoad, config: SpecConfig | None, trial_number: int
) -> dict[str, Any]:
    """One (configuration, rate load) row: the load, its summary, tau where speculative."""
    body = summary.to_dict()
    body.pop("load", None)
    flags = body.pop("flags", [])
    row: dict[str, Any] = {
        "trial_number": trial_number,
        "config_key": config_key(config),
        "num_steps": None if config is None else config.num_steps,
        "topk": None if config is None else config.topk,
        "num_draft_tokens": None if config is None else config.num_draft_tokens,
        "load": load.label,
        "load_kind": "rate",
        "rate_per_s": load.rate_per_s,
        "arrival": load.arrival.name,
        "seed": load.seed,
        "max_concurrency": load.max_concurrency,
        **body,
        "flags": "; ".join(flags),
    }
    return jsonable(row)


def _store(
    ctx: SweepContext,
    records: list[RequestRecord],
    due_s: list[float],
    sent_s: list[float],
    trial_number: int,
    config: SpecConfig | None,
    load: RateLoad,
) -> None:
    key = config_key(config) if config is not None else BASELINE_KEY
    for record, due, sent in zip(records, due_s, sent_s, strict=False):
        record.trial_number = trial_number
        record.config_key = key
        record.concurrency = 0
        record.load = load.label
        record.due_s, record.sent_s = due, sent
        record.simulated = record.simulated or ctx.simulated
    path = rate_requests_path(ctx)
    with locked(ctx.run_dir.requests_path):
        write_records(path, records, compact=True, keep_chunks=ctx.options.keep_chunks)


def store_baseline_rates(ctx: SweepContext, measured: RateMeasurement) -> None:
    ctx.study.set_user_attr(STUDY_BASELINE_RATES, measured.rows)
    if measured.slo_rate is not None:
        ctx.study.set_user_attr(STUDY_BASELINE_SLO_RATE, measured.slo_rate)


def store_trial_rates(trial: Any, measured: RateMeasurement) -> None:
    """On the trial (an Optuna trial in flight) before it is told."""
    trial.set_user_attr(ATTR_RATE_ROWS, measured.rows)
    if measured.slo_rate is not None:
        trial.set_user_attr(ATTR_SLO_RATE, measured.slo_rate)


def rate_objective(ctx: SweepContext, measured: RateMeasurement) -> float | None:
    """What the search maximises with rate loads: the SLO-rate over the baseline's (with
    objectives and ``--load sweep``), else goodput at the first rate over the
    baseline's (with objectives), else per-user output tokens/s at the first rate over
    the baseline's (below capacity every configuration serves the offered rate, so the
    speed each user sees is what speculation changes). None: no baseline to compare."""
    if not measured.rows:
        return None
    base_rows = ctx.study.user_attrs.get(STUDY_BASELINE_RATES) or []
    base = {str(r["load"]): r for r in base_rows}
    first = measured.rows[0]
    against = base.get(str(first["load"])) or {}
    base_slo = ctx.study.user_attrs.get(STUDY_BASELINE_SLO_RATE)
    if measured.slo_rate is not None and isinstance(base_slo, dict):
        mine, theirs = measured.slo_rate.get("rate_per_s"), base_slo.get("rate_per_s")
        if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and theirs > 0:
            return float(mine) / float(theirs)
    name = "goodput_per_s" if ctx.rates and ctx.rates.objectives else "output_tokens_per_s_per_user"
    mine, theirs = first.get(name), against.get(name)
    if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and theirs > 0:
        return float(mine) / float(theirs)
    return None


__all__ = [
    "ATTR_RATE_ROWS",
    "ATTR_SLO_RATE",
    "RATE_REQUESTS_FILE",
    "STUDY_BASELINE_RATES",
    "STUDY_BASELINE_SLO_RATE",
    "STUDY_SATURATION",
    "RateMeasurement",
    "measure_rate_loads",
    "measured_slo_rate",
    "rate_objective",
    "rate_row",
    "store_baseline_rates",
    "store_trial_rates",
]
