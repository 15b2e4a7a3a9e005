"""Plain data for the report's first screen, break-even plot and latency views.

Built from the recommendations (recommend.py) and the trial rows, before anything is
drawn, so the numbers are tested directly and the HTML, the Markdown summary and the
terminal cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.report.colours import tone
from specbench.rundir.break_even import BreakEven
from specbench.rundir.decision import Outcome
from specbench.rundir.defaults import DefaultComparison
from specbench.rundir.recommend import (
    KIND_OFF,
    KIND_SPECULATE,
    Candidate,
    canonical_tree,
)
from specbench.spec_config import BASELINE_KEY, SpecConfig

#: Headline per verdict kind; the CSS colours the box by the kind itself.
HEADLINES = {
    KIND_SPECULATE: "Speculate at every load tested",
    "speculate-below": "Speculate below about {break_even} concurrent requests, off above",
    KIND_OFF: "Turn speculation OFF",
}
#: When no speedup exists at all (no baseline, nothing completed): off until measured.
UNKNOWN_HEADLINE = "No verdict yet: no speedup could be computed; keep speculation off"


@dataclass
class Interval:
    """A speedup with its interval, as the page shows it ("1.23x [1.20-1.26]")."""

    speedup: float
    low: float
    high: float

    @property
    def loses(self) -> bool:
        """Slower than no speculation beyond noise: the whole interval below 1.0x."""
        return self.high < 1.0

    @property
    def tone(self) -> str:
        """pays / nopay / neutral from the interval (the page's colour for it)."""
        return tone(self.low, self.high)

    @property
    def text(self) -> str:
        return f"{self.speedup:.2f}x [{self.low:.2f}-{self.high:.2f}]"


def _interval(candidate: Candidate | None) -> Interval | None:
    if candidate is None:
        return None
    return Interval(candidate.speedup, candidate.ci[0], candidate.ci[1])


@dataclass
class LoadRow:
    """One row of the per-load table."""

    concurrency: int
    config_key: str | None  # None: no speculation
    aliases: list[str]
    speedup: Interval | None
    equivalent: list[str]
    launch: str
    #: For an "off" row: the best tree there and what it reaches (why it is off).
    best_tree: str | None
    best_tree_speedup: Interval | None


@dataclass
class ComparisonRow:
    """What one named configuration gives at every load."""

    name: str
    config_key: str | None
    cells: list[Interval | None]


@dataclass
class VerdictScreen:
    """Everything on the first screen."""

    kind: str
    headline: str
    reason: str
    launch: str
    config_key: str | None
    break_even: float | None
    concurrencies: list[int]
    loads: list[LoadRow]
    comparison: list[ComparisonRow]
    ci_sources: list[str] = field(default_factory=list)
    #: One sentence per default: loses to no speculation, or is as good as tuning.
    default_notes: list[str] = field(default_factory=list)
    #: The break-even with its interval and loads (speculate-below only).
    break_even_range: BreakEven | None = None

    @property
    def break_even_text(self) -> str:
        """``5 (4-7)`` or ``5.6-8+``: the break-even as the page shows it."""
        if self.break_even_range is not None:
            return self.break_even_range.range_text()
        return "" if self.break_even is None else format_concurrency(self.break_even)


def format_concurrency(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def verdict_screen(
    outcome: Outcome, defaults: Sequence[DefaultComparison], concurrencies: Sequence[int]
) -> VerdictScreen:
    """The first screen: verdict, per-load rows, and the named configurations compared."""
    v = outcome.verdict
    loads = []
    for rec in outcome.recommendations:
        best = rec.best_speculative
        interval = None
        if rec.config is not None and rec.speedup is not None and rec.speedup_ci is not None:
            interval = Interval(rec.speedup, rec.speedup_ci[0], rec.speedup_ci[1])
        aliases: list[str] = []
        if rec.config is not None:
            for cand in outcome.per_load.get(rec.concurrency, ()):
                if cand.config == rec.config:
                    aliases = list(cand.aliases)
        loads.append(
            LoadRow(
                rec.concurrency,
                None if rec.config is None else rec.config.key,
                aliases,
                interval,
                list(rec.equivalent),
                rec.launch,
                None if best is None else best.key,
                _interval(best),
            )
        )
    measured = [r.concurrency for r in outcome.recommendations]
    comparison = [
        ComparisonRow(
            "specbench: per-load pick",
            None,
            [load.speedup if load.config_key else None for load in loads],
        )
    ]
    if v.config is not None:
        comparison.append(
            ComparisonRow(
                f"specbench: one tree for mixed load ({v.config.key})",
                v.config.key,
                [_interval(_find(outcome, v.config, c)) for c in measured],
            )
        )
    for d in defaults:
        comparison.append(
            ComparisonRow(
                f"{d.name} ({d.config.key})",
                d.config.key,
                [_interval(d.points.get(c)) for c in measured],
            )
        )
    headline = HEADLINES.get(v.kind, v.kind)
    if v.break_even_range is not None:
        headline = headline.format(break_even=v.break_even_range.range_text())
    elif v.break_even is not None:
        headline = headline.format(break_even=format_concurrency(v.break_even))
    if all(r.speedup is None for r in outcome.recommendations):
        headline = UNKNOWN_HEADLINE
    sources = sorted({cand.ci_source for cands in outcome.per_load.values() for cand in cands})
    return VerdictScreen(
        v.kind,
        headline,
        v.reason,
        v.launch,
        None if v.config is None else v.config.key,
        v.break_even,
        measured or list(concurrencies),
        loads,
        comparison,
        sources,
        default_notes(outcome, defaults),
        v.break_even_range,
    )


def default_notes(outcome: Outcome, defaults: Sequence[DefaultComparison]) -> list[str]:
    """What the comparison with each default says, in words.

    A default that loses to no speculation is the most persuasive fact of a slow box; a
    default within noise of the tuned pick wherever speculation pays says tuning buys
    nothing measurable there, which is as worth knowing.
    """
    notes = []
    for d in defaults:
        name = f"The {d.name}'s {d.config.key}"
        points = {c: p for c, p in d.points.items() if p is not None}
        losing = [c for c, p in points.items() if p.ci[1] < 1.0]
        if losing:
            notes.append(
                f"{name} is slower than no speculation at concurrency "
                f"{', '.join(str(c) for c in losing)}."
            )
            continue
        paying = [r for r in outcome.recommendations if r.speedup_ci is not None]
        if paying and all(
            r.concurrency in points and points[r.concurrency].speedup >= r.speedup_ci[0]
            for r in paying
            if r.speedup_ci is not None
        ):
            notes.append(
                f"{name} is within noise of the per-load pick wherever speculation pays: "
                "tuning buys nothing measurable over it on this machine."
            )
    return notes


def _find(outcome: Outcome, config: SpecConfig, concurrency: int) -> Candidate | None:
    for cand in outcome.per_load.get(concurrency, ()):
        if cand.config == canonical_tree(config):
            return cand
    return None


# ---------------------------------------------------------------------------- break-even plot
@dataclass
class BandSeries:
    """A speedup curve with its interval at every point."""

    label: str
    x: list[int]
    y: list[float]
    low: list[float]
    high: list[float]
    emphasis: bool = False


@dataclass
class BreakEvenView:
    series: list[BandSeries]
    break_even: float | None  # measured interpolation (None: not crossed)
    model_label: str | None  # what the model curve is of
    model_x: list[int]
    model_y: list[float]
    kind: str
    break_even_range: BreakEven | None = None


def break_even_view(
    outcome: Outcome,
    defaults: Sequence[DefaultComparison],
    model: Sequence[tuple[int, float]] = (),
) -> BreakEvenView:
    """The mixed-load pick, the per-load best and the defaults, plus the model's curve."""
    series: list[BandSeries] = []
    pick = outcome.verdict.config
    if pick is not None:
        series.append(_band(outcome, pick, f"{pick.key} (mixed-load pick)", emphasis=True))
    best = BandSeries("best tree at each load", [], [], [], [])
    for c in sorted(outcome.per_load):
        cands = outcome.per_load[c]
        if cands:
            best.x.append(c)
            best.y.append(cands[0].speedup)
            best.low.append(cands[0].ci[0])
            best.high.append(cands[0].ci[1])
    same = bool(series) and series[0].x == best.x and series[0].y == best.y
    if best.x and not same:
        series.append(best)
    for d in defaults:
        if pick is not None and canonical_tree(d.config) == pick:
            continue
        band = _band(outcome, d.config, f"{d.name} ({d.config.key})")
        if band.x:
            series.append(band)
    label = None
    modelled = model_config(outcome)
    if model and modelled is not None:
        label = f"model prediction for {modelled.key} (SIMULATED, not a measurement)"
    return BreakEvenView(
        series,
        outcome.verdict.break_even,
        label,
        [int(c) for c, _ in model],
        [float(s) for _, s in model],
        outcome.verdict.kind,
        outcome.verdict.break_even_range,
    )


def model_config(outcome: Outcome) -> SpecConfig | None:
    """The configuration whose model curve the break-even plot shows."""
    if outcome.verdict.config is not None:
        return outcome.verdict.config
    if not outcome.per_load:
        return None
    cands = outcome.per_load[min(outcome.per_load)]
    return cands[0].config if cands else None


def _band(outcome: Outcome, config: SpecConfig, label: str, emphasis: bool = False) -> BandSeries:
    band = BandSeries(label, [], [], [], [], emphasis)
    for c in sorted(outcome.per_load):
        cand = _find(outcome, config, c)
        if cand is not None:
            band.x.append(c)
            band.y.append(cand.speedup)
            band.low.append(cand.ci[0])
            band.high.append(cand.ci[1])
    return band


# ---------------------------------------------------------------------------- latency
@dataclass
class LatencySeries:
    """One configuration (or no speculation) across the measured loads."""

    label: str
    concurrency: list[int]
    ttft_ms_p50: list[float | None]
    itl_ms_p50: list[float | None]
    output_tokens_per_s: list[float | None]


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def latency_view(trials: pd.DataFrame, named: Mapping[str, str | None]) -> list[LatencySeries]:
    """TTFT, ITL and aggregate throughput per load for the named config keys.

    ``named`` maps a label to a config key (None: the no-speculation baseline). Rows of
    one key at one load are averaged (repeats).
    """
    out: list[LatencySeries] = []
    if trials.empty:
        return out
    done = trials[trials["state"].astype(str) == "complete"]
    for label, key in named.items():
        rows = done[done["config_key"].astype(str) == (key or BASELINE_KEY)]
        if rows.empty:
            continue
        cols = ["ttft_ms_p50", "itl_ms_p50", "output_tokens_per_s"]
        numeric = rows[["concurrency", *cols]].apply(pd.to_numeric, errors="coerce")
        grouped = numeric.groupby("concurrency", as_index=False).mean().sort_values("concurrency")
        out.append(
            LatencySeries(
                label,
                [int(c) for c in grouped["concurrency"]],
                [_num(v) for v in grouped["ttft_ms_p50"]],
                [_num(v) for v in grouped["itl_ms_p50"]],
                [_num(v) for v in grouped["output_tokens_per_s"]],
            )
        )
    return out


# ---------------------------------------------------------------------------- acceptance
@dataclass
class AcceptanceByPosition:
    """P(draft token at position i accepted), from per-request accept histograms."""

    config_key: str
    positions: list[int]
    accept_rate: list[float]
    requests: int


def acceptance_by_position(
    histograms: Sequence[Sequence[int | float]], config_key: str
) -> AcceptanceByPosition | None:
    """From SGLang's ``spec_accept_histogram`` per request: counts of verify steps by
    accepted draft tokens (index = accepted length). Position i is accepted in every
    step that accepted at least i tokens."""
    total: list[float] = []
    used = 0
    for hist in histograms:
        if not hist:
            continue
        used += 1
        for i, count in enumerate(hist):
            if i >= len(total):
                total.append(0.0)
            total[i] += float(count)
    steps = sum(total)
    if not used or steps <= 0 or len(total) < 2:
        return None
    positions = list(range(1, len(total)))
    rates = [sum(total[i:]) / steps for i in positions]
    return AcceptanceByPosition(config_key, positions, rates, used)


__all__ = [
    "HEADLINES",
    "UNKNOWN_HEADLINE",
    "AcceptanceByPosition",
    "BandSeries",
    "BreakEvenView",
    "ComparisonRow",
    "Interval",
    "LatencySeries",
    "LoadRow",
    "VerdictScreen",
    "acceptance_by_position",
    "break_even_view",
    "format_concurrency",
    "latency_view",
    "model_config",
    "verdict_screen",
]
