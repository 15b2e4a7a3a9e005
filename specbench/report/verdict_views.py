"""Plain data for the report's first screen, break-even plot and latency views.

Built from the run's stored decision (specbench.verdict) and the trial rows, before
anything is drawn, so the numbers are tested directly and the HTML, the Markdown
summary and the terminal cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.report.colours import tone
from specbench.rundir.break_even import BreakEven
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict.candidates import (
    KIND_NO_FIT,
    KIND_OFF,
    KIND_SPECULATE,
    Candidate,
    canonical_tree,
)
from specbench.verdict.decision import Decision
from specbench.verdict.feasibility import memory_text
from specbench.verdict.text import exclusion_lines

#: A short title per verdict kind (the box's label); the sentence under it is the
#: decision's own headline. The CSS colours the box by the kind itself.
HEADLINES = {
    KIND_SPECULATE: "Speculate at every load tested",
    "speculate-below": "Speculate below about {break_even} concurrent requests, off above",
    KIND_OFF: "Turn speculation OFF",
    KIND_NO_FIT: "Does not fit in GPU memory at this TP",
}


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
    #: The decision's one-sentence answer (what, how sure, against what, at what cost).
    sentence: str = ""
    #: Why this tree and not the fastest-looking one.
    pick_reason: str = ""
    #: What was filtered out before ranking (memory, the engine's limits), in words.
    excluded: list[str] = field(default_factory=list)
    #: The memory check of what is recommended, in words ("" when unknown).
    memory: str = ""
    memory_fits: bool | None = None
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


def verdict_screen(d: Decision) -> VerdictScreen:
    """The first screen: verdict, per-load rows, and the named configurations compared."""
    loads = []
    for rec in d.loads:
        best = rec.best_speculative
        interval = None
        if rec.config is not None and rec.speedup is not None and rec.speedup_ci is not None:
            interval = Interval(rec.speedup, rec.speedup_ci[0], rec.speedup_ci[1])
        cand = None if rec.config is None else d.candidate(rec.config, rec.concurrency)
        loads.append(
            LoadRow(
                rec.concurrency,
                None if rec.config is None else rec.config.key,
                [] if cand is None else list(cand.aliases),
                interval,
                list(rec.equivalent),
                rec.launch,
                None if best is None else best.key,
                _interval(best),
            )
        )
    measured = [r.concurrency for r in d.loads]
    comparison = [
        ComparisonRow(
            "specbench: per-load pick",
            None,
            [load.speedup if load.config_key else None for load in loads],
        )
    ]
    if d.config is not None:
        comparison.append(
            ComparisonRow(
                f"specbench: one tree for mixed load ({d.config.key})",
                d.config.key,
                [_interval(d.candidate(d.config, c)) for c in measured],
            )
        )
    for x in d.defaults:
        comparison.append(
            ComparisonRow(
                f"{x.name} ({x.config.key})",
                x.config.key,
                [_interval(x.points.get(c)) for c in measured],
            )
        )
    title = HEADLINES.get(d.kind, d.kind)
    if d.break_even_range is not None:
        title = title.format(break_even=d.break_even_range.range_text())
    elif d.break_even is not None:
        title = title.format(break_even=format_concurrency(d.break_even))
    if not d.known and d.kind != KIND_NO_FIT:
        title = "No verdict yet"
    sources = sorted({cand.ci_source for cands in d.per_load.values() for cand in cands})
    return VerdictScreen(
        d.kind,
        title,
        d.reason,
        d.launch,
        None if d.config is None else d.config.key,
        d.break_even,
        measured or list(d.concurrencies),
        loads,
        comparison,
        sources,
        list(d.headline.notes),
        d.headline.text,
        d.headline.pick_reason,
        [line.strip() for line in exclusion_lines(d)],
        "" if d.memory is None else memory_text(d.memory),
        None if d.memory is None else d.memory.fits,
        d.break_even_range,
    )


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


def break_even_view(d: Decision, model: Sequence[tuple[int, float]] = ()) -> BreakEvenView:
    """The mixed-load pick, the per-load best and the defaults, plus the model's curve."""
    series: list[BandSeries] = []
    pick = d.config
    if pick is not None:
        series.append(_band(d, pick, f"{pick.key} (mixed-load pick)", emphasis=True))
    best = BandSeries("best tree at each load", [], [], [], [])
    for c in sorted(d.per_load):
        cands = d.per_load[c]
        if cands:
            best.x.append(c)
            best.y.append(cands[0].speedup)
            best.low.append(cands[0].ci[0])
            best.high.append(cands[0].ci[1])
    same = bool(series) and series[0].x == best.x and series[0].y == best.y
    if best.x and not same:
        series.append(best)
    for x in d.defaults:
        if pick is not None and canonical_tree(x.config) == pick:
            continue
        band = _band(d, x.config, f"{x.name} ({x.config.key})")
        if band.x:
            series.append(band)
    label = None
    modelled = model_config(d)
    if model and modelled is not None:
        label = f"model prediction for {modelled.key} (SIMULATED, not a measurement)"
    return BreakEvenView(
        series,
        d.break_even,
        label,
        [int(c) for c, _ in model],
        [float(s) for _, s in model],
        d.kind,
        d.break_even_range,
    )


def model_config(d: Decision) -> SpecConfig | None:
    """The configuration whose model curve the break-even plot shows."""
    if d.config is not None:
        return d.config
    if not d.per_load:
        return None
    cands = d.per_load[min(d.per_load)]
    return cands[0].config if cands else None


def _band(d: Decision, config: SpecConfig, label: str, emphasis: bool = False) -> BandSeries:
    band = BandSeries(label, [], [], [], [], emphasis)
    for c in sorted(d.per_load):
        cand = d.candidate(canonical_tree(config), c)
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
