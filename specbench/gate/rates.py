"""The gate on request-rate loads: each configuration's SLO-rate, and goodput per rate.

An SLO-rate is a bracket, not a sample: the highest rate found within the objectives
and the lowest found outside them (verdict.rate_decision). A candidate regresses when
even its bracket's top is below the baseline's SLO-rate by more than the threshold
(``--max-slo-rate-drop``): the drop is then beyond the search's resolution. A drop
past the threshold inside the bracket is "insignificant". Goodput per (configuration,
rate) is shown for information: it has no per-request samples to test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from specbench.gate.results import GateOptions, GateRow, Status

METRIC_SLO_RATE = "slo_rate_per_s"
METRIC_GOODPUT = "goodput_per_s"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _row(
    metric: str, key: str, base: float, cand: float, threshold: float, status: Status, note: str
) -> GateRow:
    return GateRow(
        metric=metric,
        config_key=key,
        concurrency=0,
        baseline_value=base,
        candidate_value=cand,
        change=cand / base - 1.0 if base else math.nan,
        threshold=threshold,
        status=status,
        method="",
        p_value=None,
        n_baseline=0,
        n_candidate=0,
        statistic="bracket" if metric == METRIC_SLO_RATE else "aggregate",
        note=note,
    )


def slo_rate_status(
    base: Mapping[str, Any], cand: Mapping[str, Any], threshold: float
) -> tuple[Status, str]:
    """Whether the candidate's SLO-rate fell (or rose) beyond the threshold and its bracket."""
    b, c = _number(base.get("rate_per_s")) or 0.0, _number(cand.get("rate_per_s")) or 0.0
    b_high, c_high = _number(base.get("high_per_s")), _number(cand.get("high_per_s"))
    c_top = math.inf if c_high is None else c_high
    if b > 0 and c_top < b * (1.0 - threshold):
        return Status.REGRESSION, f"even its bracket's top {c_top:.3g} is below {b:.3g} req/s"
    if b > 0 and c < b * (1.0 - threshold):
        return Status.INSIGNIFICANT, "the drop is within the SLO-rate search's bracket"
    if b_high is not None and c > b_high * (1.0 + threshold):
        return Status.IMPROVED, f"above the baseline's bracket top {b_high:.3g} req/s"
    return Status.PASS, ""


def rate_rows(
    baseline: Mapping[str, Any] | None, candidate: Mapping[str, Any] | None, options: GateOptions
) -> list[GateRow]:
    """SLO-rate rows (gated) and goodput rows (information) of configurations both runs
    measured at rates; nothing when either run has no rate loads."""
    if not baseline or not candidate:
        return []
    wanted = set(options.configs)
    threshold = options.threshold(METRIC_SLO_RATE)
    rows: list[GateRow] = []
    base_slo = {e["config_key"]: e for e in baseline.get("slo_rates", [])}
    for entry in candidate.get("slo_rates", []):
        key = entry["config_key"]
        if key not in base_slo or (wanted and key not in wanted and key != "baseline"):
            continue
        status, note = slo_rate_status(base_slo[key], entry, threshold)
        base_value = _number(base_slo[key].get("rate_per_s")) or 0.0
        rows.append(
            _row(METRIC_SLO_RATE, key, base_value, _number(entry.get("rate_per_s")) or 0.0,
                 threshold, status, note)
        )  # fmt: skip
    base_rows = {(r["config_key"], r["load"]): r for r in baseline.get("rows", [])}
    for row in candidate.get("rows", []):
        cell = (row["config_key"], row["load"])
        before = base_rows.get(cell)
        b, c = _number((before or {}).get("goodput_per_s")), _number(row.get("goodput_per_s"))
        if before is None or b is None or c is None or (wanted and cell[0] not in wanted):
            continue
        rows.append(_row(METRIC_GOODPUT, cell[0], b, c, threshold, Status.INFO, f"at {cell[1]}"))
    return rows


__all__ = ["METRIC_GOODPUT", "METRIC_SLO_RATE", "rate_rows", "slo_rate_status"]
