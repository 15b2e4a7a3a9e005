"""The rate loads' part of results.json and trials.csv, rebuilt from the study alone.

results.json gains ``rates``: the plan (rates, arrival, objectives), the saturation rate
of a ``--load sweep``, one row per (configuration, rate load) with unit-carrying names
(``ttft_ms_p99``, ``tpot_ms_p50``, ``output_tokens_per_s``, ``goodput_per_s``), each
configuration's SLO-rate and the decision (verdict.rate_decision). trials.csv gets the
same rows after the closed-loop ones, with ``load`` naming the rate; results.json
"trials" keeps only the closed-loop rows its readers key by concurrency.
"""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd

from specbench.rundir.layout import normalise_trials
from specbench.schema import SCHEMA_VERSION, write_text_atomic
from specbench.spec_config import BASELINE_KEY
from specbench.sweeps.context import SweepContext
from specbench.sweeps.measure_rates import (
    ATTR_RATE_ROWS,
    ATTR_SLO_RATE,
    STUDY_BASELINE_RATES,
    STUDY_BASELINE_SLO_RATE,
    STUDY_SATURATION,
)
from specbench.sweeps.search import ATTR_CONFIG, ATTR_REUSED, ATTR_SKIPPED, retried_trials
from specbench.verdict.rate_decision import rate_decision

#: The columns rate rows add to trials.csv, after the closed-loop ones.
RATE_COLUMNS: tuple[str, ...] = (
    "load",
    "load_kind",
    "rate_per_s",
    "arrival",
    "seed",
    "max_concurrency",
    "requests",
    "completed",
    "failed",
    "offered_rate_per_s",
    "sent_rate_per_s",
    "scheduled_rate_per_s",
    "achieved_rate_per_s",
    "completed_per_s",
    "window_s",
    "unfinished_at_window_end",
    "send_lag_ms_p50",
    "send_lag_ms_p99",
    "ttft_ms_p50",
    "ttft_ms_p90",
    "ttft_ms_p99",
    "tpot_ms_p50",
    "tpot_ms_p90",
    "tpot_ms_p99",
    "itl_ms_p50",
    "itl_ms_p90",
    "itl_ms_p99",
    "e2e_ms_p50",
    "e2e_ms_p90",
    "e2e_ms_p99",
    "output_tokens_per_s",
    "output_tokens_per_s_per_user",
    "goodput_per_s",
    "slo_met",
    "flags",
)


def rate_rows_from_study(study: optuna.Study) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every rate row (baseline first, then trials by number, each configuration once)
    and every stored SLO-rate by configuration key, with its tree fields."""
    rows: list[dict[str, Any]] = [dict(r) for r in study.user_attrs.get(STUDY_BASELINE_RATES) or []]
    found: dict[str, Any] = {}
    base_slo = study.user_attrs.get(STUDY_BASELINE_SLO_RATE)
    if isinstance(base_slo, dict):
        found[BASELINE_KEY] = dict(base_slo)
    retried = retried_trials(study)
    seen: set[str] = set()
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        attrs = trial.user_attrs
        if ATTR_RATE_ROWS not in attrs or ATTR_REUSED in attrs or ATTR_SKIPPED in attrs:
            continue
        key = str(attrs.get(ATTR_CONFIG, ""))
        if trial.number in retried or key in seen:
            continue
        seen.add(key)
        trial_rows = [dict(r) for r in attrs[ATTR_RATE_ROWS]]
        rows.extend(trial_rows)
        slo = attrs.get(ATTR_SLO_RATE)
        if isinstance(slo, dict) and trial_rows:
            tree = {n: trial_rows[0].get(n) for n in ("num_steps", "topk", "num_draft_tokens")}
            found[key] = {**slo, **tree}
    return rows, found


def rates_section(ctx: SweepContext) -> dict[str, Any] | None:
    """results.json "rates" (None when the sweep has no rate loads)."""
    plan = ctx.rates
    if plan is None:
        return None
    rows, found = rate_rows_from_study(ctx.study)
    saturation = ctx.study.user_attrs.get(STUDY_SATURATION)
    return {
        "plan": plan.describe(),
        "slo": [
            {"name": o.name, "metric": o.metric, "percentile": o.percentile, "limit_ms": o.limit_ms}
            for o in plan.objectives
        ],
        "slo_text": plan.slo_text(),
        "saturation_per_s": saturation if isinstance(saturation, (int, float)) else None,
        "rows": rows,
        **rate_decision(rows, found, plan.slo_text()),
    }


def write_trials_with_rates(
    ctx: SweepContext, frame: pd.DataFrame, rates: dict[str, Any] | None
) -> None:
    """trials.csv: the closed-loop rows, then one row per (configuration, rate load)."""
    if not rates or not rates["rows"]:
        ctx.run_dir.write_trials(frame)
        return
    frame = normalise_trials(frame)
    extra = [c for c in RATE_COLUMNS if c not in frame.columns]
    rate_frame = pd.DataFrame(rates["rows"])
    columns = [*frame.columns, *extra]
    combined = pd.concat(
        [frame.reindex(columns=columns), rate_frame.reindex(columns=columns)], ignore_index=True
    )
    combined["schema_version"] = SCHEMA_VERSION
    write_text_atomic(ctx.run_dir.trials_path, combined.to_csv(index=False))


__all__ = ["RATE_COLUMNS", "rate_rows_from_study", "rates_section", "write_trials_with_rates"]
