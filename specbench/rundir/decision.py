"""From per-load candidates to the answer: recommendations and the three-way verdict.

Per load, the cheapest tree within noise of the best that pays, or no speculation.
For mixed load: ``speculate`` when every measured load pays, ``speculate-below`` with
the break-even interpolated between the last load that pays and the first that does
not (the robust pick's curve), ``off`` when the lowest load does not pay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from specbench.rundir.break_even import BreakEven, locate_break_even
from specbench.rundir.recommend import (
    KIND_OFF,
    KIND_SPECULATE,
    KIND_SPECULATE_BELOW,
    Candidate,
    IntervalSource,
    LaunchLine,
    Recommendation,
    VerdictSummary,
    candidate_table,
    candidates_at,
    find_candidate,
    recommend_at,
    robust_pick,
)
from specbench.spec_config import SpecConfig


@dataclass
class Outcome:
    """Everything this module decides for one run."""

    recommendations: list[Recommendation]
    verdict: VerdictSummary
    per_load: dict[int, list[Candidate]]

    def to_json(self) -> dict[str, Any]:
        return {
            "recommendations": [r.to_json() for r in self.recommendations],
            "verdict": self.verdict.to_json(),
        }


def decide(
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    launch: LaunchLine,
    *,
    intervals: IntervalSource | None = None,
    baseline_loads: Sequence[int] | None = None,
    simulated: bool = False,
    host_staged: bool = False,
) -> Outcome:
    """Per-load recommendations and the verdict for mixed load.

    ``baseline_loads`` are the concurrencies where a baseline completed; a load gets a
    recommendation when it has a speculative speedup or a baseline.
    """
    table = candidate_table(trials)
    loads = sorted({int(c) for c in concurrencies})
    per_load = {c: candidates_at(table, c, intervals) for c in loads}
    # A load is measured when a speedup exists there, or when its baseline ran (then
    # no tree completed, and the answer there is no speculation).
    measured = [c for c in loads if per_load[c] or c in (baseline_loads or ())]
    recs = [recommend_at(per_load[c], c, launch) for c in measured]
    verdict = summarise(recs, per_load, launch, simulated=simulated, host_staged=host_staged)
    return Outcome(recs, verdict, per_load)


def summarise(
    recs: Sequence[Recommendation],
    per_load: Mapping[int, Sequence[Candidate]],
    launch: LaunchLine,
    *,
    simulated: bool = False,
    host_staged: bool = False,
) -> VerdictSummary:
    """Three-way verdict from the per-load recommendations."""
    prefix = "SIMULATED: " if simulated else ""
    on = [r.concurrency for r in recs if r.config is not None]
    off = [r.concurrency for r in recs if r.config is None]
    if not recs or all(r.speedup is None for r in recs):
        reason = (
            "No speedup could be computed (no baseline or no completed speculative "
            "configuration), so keep speculation off until one is measured."
        )
        return VerdictSummary(KIND_OFF, None, None, launch(None), prefix + reason, on, off)
    first = recs[0]
    if first.config is None:
        return _off_verdict(recs, launch, prefix, host_staged, on, off)
    # Speculate at the low loads that pay, up to the first load that does not.
    prefix_on = []
    for r in recs:
        if r.config is None:
            break
        prefix_on.append(r.concurrency)
    pick, score = robust_pick(per_load, prefix_on)
    # prefix_on is non-empty and measured, so a pick exists; first.config is a guard.
    pick_config = first.config if pick is None else pick.config
    if len(prefix_on) == len(recs):
        return _speculate_verdict(recs, per_load, pick_config, score, launch, prefix, on, off)
    stop = recs[len(prefix_on)]
    measured = [r.concurrency for r in recs]
    crossing = _crossing(per_load, pick_config, prefix_on[-1], stop.concurrency, measured)
    point = crossing.point
    curve = ", ".join(_speed_at(per_load, pick_config, r.concurrency) for r in recs)
    reason = (
        f"Speculate with {pick_config.key} ({curve}) below {crossing.phrase()}; above that, "
        "launch without speculation: at concurrency "
        f"{stop.concurrency} no tree beats the baseline beyond noise"
        + (_best_loss(stop) if stop.best_speculative else "")
        + "."
    )
    return VerdictSummary(
        KIND_SPECULATE_BELOW,
        point,
        pick_config,
        launch(pick_config),
        prefix + reason,
        on,
        off,
        score,
        crossing,
    )


def _off_verdict(
    recs: Sequence[Recommendation],
    launch: LaunchLine,
    prefix: str,
    host_staged: bool,
    on: list[int],
    off: list[int],
) -> VerdictSummary:
    first = recs[0]
    why = (
        "all-reduce is staged through host memory (no GPU peer-to-peer), so the draft and "
        "verify collectives cost more than the accepted tokens save"
        if host_staged
        else "no tree beats the baseline beyond noise"
    )
    loss = _best_loss(first) if first.best_speculative else ""
    also = (
        f" It pays only at concurrency {', '.join(str(c) for c in on)}, above the lowest "
        "load tested; a server that sees light load would lose."
        if on
        else ""
    )
    reason = f"Turn speculation off: at concurrency {first.concurrency} {why}{loss}.{also}"
    return VerdictSummary(KIND_OFF, None, None, launch(None), prefix + reason, on, off)


def _speculate_verdict(
    recs: Sequence[Recommendation],
    per_load: Mapping[int, Sequence[Candidate]],
    pick: SpecConfig,
    score: float | None,
    launch: LaunchLine,
    prefix: str,
    on: list[int],
    off: list[int],
) -> VerdictSummary:
    curve = ", ".join(_speed_at(per_load, pick, r.concurrency) for r in recs)
    top = recs[-1].concurrency
    reason = (
        f"Speculate with {pick.key} at every load tested ({curve}); the break-even lies "
        f"above concurrency {top}, the highest tested."
    )
    return VerdictSummary(KIND_SPECULATE, None, pick, launch(pick), prefix + reason, on, off, score)


def _speed_at(per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, c: int) -> str:
    cand = find_candidate(per_load, config, c)
    if cand is None:
        return f"not tested at {c}"
    return f"{cand.speedup:.2f}x [{cand.ci[0]:.2f}-{cand.ci[1]:.2f}] at {c}"


def _best_loss(rec: Recommendation) -> str:
    best = rec.best_speculative
    assert best is not None
    return f" (the best tree, {best.key}, reaches {best.speedup:.2f}x [{best.ci[0]:.2f}-{best.ci[1]:.2f}])"


def _crossing(
    per_load: Mapping[int, Sequence[Candidate]],
    config: SpecConfig,
    low_c: int,
    high_c: int,
    measured: Sequence[int],
) -> BreakEven:
    """Break-even of ``config`` between two measured loads, with its interval; the
    envelope where ``config`` was not measured."""
    low = find_candidate(per_load, config, low_c) or per_load[low_c][0]
    high_cands = per_load.get(high_c) or ()
    high = find_candidate(per_load, config, high_c) or (high_cands[0] if high_cands else None)
    low_interval = (low.speedup, *low.ci)
    if high is None:
        # No tree completed at high_c: nothing places the crossing above low_c.
        return locate_break_even(low_c, low_interval, high_c, None, measured)
    return locate_break_even(low_c, low_interval, high_c, (high.speedup, *high.ci), measured)


__all__ = ["Outcome", "decide", "summarise"]
