"""Builders of the report's charts and tables, from trial rows and request records.

Each returns plain data (a view of ``views``); ``plots`` draws it, so every number in
a chart is tested here, not in SVG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from specbench.report.colours import tone
from specbench.report.views import (
    TABLE_COLUMNS,
    TOP_CONFIGS_PLOTTED,
    TOP_CONFIGS_SUMMARY,
    FailedTrial,
    Heatmap,
    OptimizationHistory,
    PredictedPoint,
    PredictionCheck,
    Series,
    TableCell,
    TauDistribution,
    TopRow,
    TrialTable,
    int_or_none,
    percentile,
)
from specbench.rundir.records import RequestRecord
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict.candidates import candidate_table, finite, noise_interval, rank_configs
from specbench.verdict.decision import Decision


def interval_tone(speedup: float, low: Any = None, high: Any = None) -> str:
    """The tone of a speedup from its recorded interval, else from the 2% noise band
    (the narrowest interval the verdict ever uses)."""
    lo, hi = finite(low), finite(high)
    if lo is None or hi is None:
        lo, hi = noise_interval(speedup)
    return tone(lo, hi)


def build_heatmap(
    table: pd.DataFrame,
    concurrency: int,
    *,
    pick: SpecConfig | None = None,
    intervals: Mapping[str, tuple[float, float]] | None = None,
) -> Heatmap | None:
    """Best speedup per (num_steps, topk) with its tone, and the pick's cell marked.

    ``intervals`` are the verdict's own intervals at this load by configuration key, so
    a cell is coloured exactly when the verdict calls it paying or losing."""
    rows = table[(table["concurrency"] == concurrency) & table["speedup"].notna()]
    if rows.empty:
        return None
    steps = sorted({int(s) for s in rows["num_steps"]})
    topks = sorted({int(k) for k in rows["topk"]})
    speed: list[list[float | None]] = [[None] * len(topks) for _ in steps]
    ndt: list[list[int | None]] = [[None] * len(topks) for _ in steps]
    tones = [[""] * len(topks) for _ in steps]
    for (s, k), cell in rows.groupby(["num_steps", "topk"]):
        ranked = rank_configs(cell, concurrency)
        if not ranked or ranked[0]["speedup"] is None:
            continue
        i, j = steps.index(int(s)), topks.index(int(k))
        speed[i][j] = ranked[0]["speedup"]
        ndt[i][j] = ranked[0]["num_draft_tokens"]
        low, high = (intervals or {}).get(ranked[0]["config_key"], (None, None))
        tones[i][j] = interval_tone(ranked[0]["speedup"], low, high)
    pick_cell = None
    if pick is not None and pick.num_steps in steps and pick.topk in topks:
        pick_cell = (steps.index(pick.num_steps), topks.index(pick.topk))
    return Heatmap(
        concurrency,
        steps,
        topks,
        speed,
        ndt,
        tones,
        pick_cell,
        None if pick is None else pick.key,
    )


def build_tau_vs_draft_tokens(table: pd.DataFrame) -> list[Series]:
    """Best tau (over num_steps) per num_draft_tokens, one line per topk.

    tau is a property of the tree, not of the load, so it is averaged over concurrencies
    first; the best over depths shows what a draft-token budget can buy.
    """
    rows = table[table["tau"].notna()]
    if rows.empty:
        return []
    per_config = rows.groupby(["topk", "num_steps", "num_draft_tokens"], as_index=False)[
        "tau"
    ].mean()
    best = per_config.groupby(["topk", "num_draft_tokens"], as_index=False)["tau"].max()
    out = []
    for topk, group in best.groupby("topk"):
        group = group.sort_values("num_draft_tokens")
        out.append(
            Series(
                f"topk {int(topk)}",
                [float(x) for x in group["num_draft_tokens"]],
                [finite(y) for y in group["tau"]],
            )
        )
    return out


def build_speedup_vs_concurrency(
    trials: pd.DataFrame, primary: int, *, include: str | None = None
) -> list[Series]:
    """The top trees at the primary concurrency across every measured load, and the
    tree ``include`` names (the pick) when it is not among them.

    From the merged table: flag sets that build the same tree (one draft step, any
    topk) are one line labelled with all their names, not several lines on top of
    each other.
    """
    table = candidate_table(trials)
    at_primary = table[(table["concurrency"] == primary) & table["speedup"].notna()]
    keys = list(at_primary.sort_values("speedup", ascending=False)["config_key"])
    shown = keys[:TOP_CONFIGS_PLOTTED]
    if include is not None and include in keys and include not in shown:
        shown.append(include)
    out = []
    for key in shown:
        rows = table[(table["config_key"] == key) & table["speedup"].notna()]
        rows = rows.sort_values("concurrency")
        aliases = rows["aliases"].iloc[0]
        out.append(
            Series(
                key + (f" (= {', '.join(aliases)})" if aliases else ""),
                [float(c) for c in rows["concurrency"]],
                [finite(s) for s in rows["speedup"]],
            )
        )
    return out


def build_tau_distribution(
    requests: Iterable[RequestRecord], best_key: str | None
) -> TauDistribution | None:
    """Per-request tau per domain for the recommended configuration, else all trials."""
    spec = [r for r in requests if r.config_key != BASELINE_KEY and r.tau is not None]
    chosen = [r for r in spec if best_key is not None and r.config_key == best_key]
    source = f"configuration {best_key}" if chosen else "all speculative trials"
    records = chosen or spec
    if not records:
        return None
    samples: dict[str, list[float]] = {}
    for record in records:
        assert record.tau is not None
        samples.setdefault(record.domain or "unknown", []).append(record.tau)
    domains = sorted(samples)
    stats: dict[str, dict[str, float | int | None]] = {}
    for domain in domains:
        values = samples[domain]
        stats[domain] = {
            "n": len(values),
            "mean": float(np.mean(values)),
            "p10": percentile(values, 10),
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
        }
    return TauDistribution(source, domains, samples, stats)


def build_history(trials: pd.DataFrame, concurrency: int) -> OptimizationHistory | None:
    """Speedup at the primary concurrency by trial number, and the best so far."""
    rows = trials[
        (trials["trial_number"] >= 0)
        & (trials["state"] == "complete")
        & (trials["concurrency"] == concurrency)
        & trials["speedup"].notna()
    ]
    if rows.empty:
        return None
    per_trial = rows.groupby("trial_number", as_index=False).agg(
        speedup=("speedup", "mean"), source=("source", "first")
    )
    per_trial = per_trial.sort_values("trial_number")
    speedups = [float(s) for s in per_trial["speedup"]]
    best = list(np.maximum.accumulate(speedups)) if speedups else []
    return OptimizationHistory(
        concurrency=concurrency,
        trial_numbers=[int(n) for n in per_trial["trial_number"]],
        speedups=speedups,
        best_so_far=[float(b) for b in best],
        sources=[str(s) for s in per_trial["source"]],
    )


def build_prediction_check(trials: pd.DataFrame) -> PredictionCheck | None:
    rows = trials[
        (trials["state"] == "complete")
        & (trials["config_key"] != BASELINE_KEY)  # 1.0 by definition, predicted or not
        & trials["predicted_speedup"].notna()
        & trials["speedup"].notna()
    ]
    if rows.empty:
        return None
    points = [
        PredictedPoint(
            str(r.config_key), int(r.concurrency), float(r.predicted_speedup), float(r.speedup)
        )
        for r in rows.itertuples(index=False)
    ]
    errors = [abs(p.predicted - p.measured) / p.measured for p in points if p.measured > 0]
    return PredictionCheck(
        points=points,
        mean_abs_pct_error=float(np.mean(errors)) * 100 if errors else None,
        within_10pct=sum(1 for e in errors if e <= 0.10 + 1e-9),
    )


def _cell(value: Any, kind: str) -> TableCell:
    if kind == "text":
        text = "" if value is None or value is pd.NA else str(value)
        return TableCell(text, text.lower())
    if kind == "bool":
        if value is None or value is pd.NA:
            return TableCell("", "")
        return TableCell("yes" if bool(value) else "", "1" if bool(value) else "0")
    number = finite(value)
    if number is None:
        return TableCell("", "")
    if kind == "int":
        return TableCell(str(int(number)), repr(float(number)))
    if kind == "float1":
        return TableCell(f"{number:.1f}", repr(number))
    if kind == "float2x":
        return TableCell(f"{number:.2f}x", repr(number))
    return TableCell(f"{number:.2f}", repr(number))


def _toned(cell: TableCell, name: str, record: dict[str, Any]) -> TableCell:
    """The measured speedup's cell coloured by its interval (predicted ones stay plain)."""
    speed = finite(record.get("speedup"))
    if name != "speedup" or speed is None or record.get("config_key") == BASELINE_KEY:
        return cell
    tone_ = interval_tone(speed, record.get("speedup_ci_low"), record.get("speedup_ci_high"))
    return TableCell(cell.text, cell.sort, tone_)


def build_trial_table(trials: pd.DataFrame) -> TrialTable:
    ordered = trials.sort_values(["trial_number", "concurrency"], kind="stable")
    rows: list[list[TableCell]] = []
    states: list[str] = []
    records = ordered.astype(object).to_dict(orient="records")
    for record in records:
        rows.append(
            [_toned(_cell(record.get(name), kind), name, record) for name, _, kind in TABLE_COLUMNS]
        )
        states.append(str(record.get("state", "")))
    return TrialTable([(h, k) for _, h, k in TABLE_COLUMNS], rows, states)


def build_failed(trials: pd.DataFrame) -> list[FailedTrial]:
    """Failed trials, one entry per trial (a trial fails once for all its concurrencies)."""
    rows = trials[trials["state"] == "failed"]
    out: dict[tuple[int, str, str, str], FailedTrial] = {}
    for r in rows.itertuples(index=False):
        number = int_or_none(r.trial_number)
        key = (
            number if number is not None else -1,
            str(r.config_key),
            str(r.error),
            str(r.log_tail),
        )
        entry = out.get(key)
        if entry is None:
            entry = out[key] = FailedTrial(
                key[0], key[1], [], key[2] or "no reason recorded", key[3]
            )
        c = int_or_none(r.concurrency)
        if c is not None and c not in entry.concurrencies:
            entry.concurrencies.append(c)
    return sorted(out.values(), key=lambda f: (f.trial_number, f.config_key))


def build_top(decision: Decision, concurrencies: Sequence[int]) -> list[TopRow]:
    """The decision's ranking at the primary load: the pick first, then by speedup."""
    out = []
    for rank, cand in enumerate(decision.ranking()[:TOP_CONFIGS_SUMMARY], start=1):
        by_c = {c: decision.candidate(cand.config, c) for c in concurrencies}
        out.append(
            TopRow(
                rank,
                cand.key,
                cand.tau,
                {c: None if x is None else x.speedup for c, x in by_c.items()},
            )
        )
    return out
