"""The verdict's plots: break-even, step time, latency, heatmap; each point has a tooltip.

A tooltip is an SVG ``<title>`` inside the group of the artist it describes: browsers
show it on hover (and screen readers read it) with no script at all, so the report
keeps its no-network, one-script policy. Artists get a ``gid``; matplotlib writes it as
the id of the artist's group, and ``add_tooltips`` puts the title there.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Rectangle

from specbench.report import colours
from specbench.report.plots import _figure, plain_text, to_svg
from specbench.report.verdict_views import (
    AcceptanceByPosition,
    BreakEvenView,
    LatencySeries,
    format_concurrency,
)
from specbench.report.why import StepBreakdown

#: Colours of the step-time parts, the same in every plot (none of them the pick's).
PART_COLOURS = {
    "draft": "#E69F00",
    "verify": "#0072B2",
    "all-reduce": "#882255",
    "other": "#999999",
}
UNMEASURED = "#e6e6e6"
#: A heatmap cell whose interval includes 1.0x: within noise of no speculation.
WITHIN_NOISE = "#f7f7f7"


def add_tooltips(svg: str, prefix: str, tips: Mapping[str, str]) -> str:
    """Insert ``<title>`` into each ``<g id="{prefix}-{gid}">`` named in ``tips``."""

    def insert(match: re.Match[str]) -> str:
        gid = match.group(1)
        text = tips.get(gid)
        if text is None:
            return match.group(0)
        return f"{match.group(0)}<title>{html.escape(text)}</title>"

    return re.sub(rf'<g id="{re.escape(prefix)}-(tip-\d+)"[^>]*>', insert, svg)


def _log2_axis(ax: matplotlib.axes.Axes, xs: Sequence[float]) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(xs))
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()


def break_even_svg(view: BreakEvenView, *, simulated: bool = False) -> str:
    """Speedup vs load with intervals; the model's curve dashed and labelled as such."""
    tips: dict[str, str] = {}
    with _figure(5.0, 5.4) as fig:
        ax = fig.add_subplot()
        xs: list[float] = []
        for i, s in enumerate(view.series):
            colour = colours.series_colour(s.label, i)
            xs += s.x
            ax.plot(
                s.x, s.y, lw=2.4 if s.emphasis else 1.2, color=colour, label=plain_text(s.label)
            )
            for x, y, lo, hi in zip(s.x, s.y, s.low, s.high, strict=True):
                gid = f"tip-{len(tips)}"
                ax.plot([x, x], [lo, hi], color=colour, lw=1.0, alpha=0.8)
                ax.plot([x], [y], marker="o", ms=6 if s.emphasis else 4, color=colour, gid=gid)
                tips[gid] = f"{s.label}: {y:.2f}x [{lo:.2f}-{hi:.2f}] at concurrency {x}"
        if view.model_x and view.model_label:
            ax.plot(
                view.model_x,
                view.model_y,
                ls="--",
                lw=1.2,
                color="#555555",
                label=plain_text(view.model_label),
            )
            xs += view.model_x
        ax.axhline(1.0, color=colours.NO_SPECULATION, lw=1.0, ls=":", label="no speculation (1.0x)")
        _break_even_marks(ax, view)
        _log2_axis(ax, xs)
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("speedup vs no speculation")
        ax.set_title("Where speculation stops paying")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=1, frameon=False)
        return add_tooltips(to_svg(fig, "break-even", simulated=simulated), "break-even", tips)


def _break_even_marks(ax: matplotlib.axes.Axes, view: BreakEvenView) -> None:
    """The interpolated break-even, and the band its intervals allow: up to the higher
    load and an arrow beyond it when the loads tested cannot place the upper end."""
    be = view.break_even_range
    if be is None:
        if view.break_even is not None:
            ax.axvline(
                view.break_even,
                color="#b00020",
                lw=1.2,
                ls="-.",
                label=f"break-even ~{format_concurrency(view.break_even)} (interpolated)",
            )
        return
    high = be.high if be.high is not None else float(be.high_load)
    label = (
        f"break-even ~{be.range_text()} (interpolated)"
        if be.located
        else f"break-even {be.range_text()} (not located by loads {be.low_load} and {be.high_load})"
    )
    ax.axvspan(
        be.low,
        max(high, be.low * 1.02),
        color="#b00020",
        alpha=0.12,
        lw=0,
        label=label,
    )
    ax.axvline(be.point, color="#b00020", lw=1.2, ls="-.")
    if not be.located:
        ax.annotate(
            "",
            xy=(high * 1.6, 0.5),
            xytext=(high, 0.5),
            xycoords=("data", "axes fraction"),
            arrowprops={"arrowstyle": "->", "color": "#b00020", "lw": 1.2},
        )


def step_breakdown_svg(rows: Sequence[StepBreakdown], *, simulated: bool = True) -> str:
    """Milliseconds per generated token, split into draft / verify / all-reduce / other."""
    tips: dict[str, str] = {}
    with _figure(5.0, max(2.8, 1.5 + 0.42 * len(rows))) as fig:
        ax = fig.add_subplot()
        labels = [f"{r.label} @ {r.concurrency}" for r in rows]
        for i, r in enumerate(rows):
            left = 0.0
            parts = (
                ("draft", r.draft_ms),
                ("verify", r.verify_ms),
                ("all-reduce", r.allreduce_ms),
                ("other", r.other_ms),
            )
            for name, ms in parts:
                width = ms / r.tokens_per_step
                gid = f"tip-{len(tips)}"
                ax.add_patch(
                    Rectangle((left, i - 0.35), width, 0.7, facecolor=PART_COLOURS[name], gid=gid)
                )
                tips[gid] = (
                    f"{labels[i]}: {name} {ms:.2f} ms per step, {width:.2f} ms per token "
                    f"({r.tokens_per_step:.2f} tokens per step)"
                )
                left += width
        for name, colour in PART_COLOURS.items():
            ax.bar([0], [0], color=colour, label=name)
        ax.set_yticks(range(len(rows)), [plain_text(x) for x in labels])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlim(0, max((r.ms_per_token for r in rows), default=1.0) * 1.05)
        ax.invert_yaxis()
        ax.set_xlabel("ms per generated token (model, SIMULATED)")
        ax.set_title("Step time per token, by part")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=2, frameon=False)
        return add_tooltips(to_svg(fig, "step-time", simulated=simulated), "step-time", tips)


def latency_svg(series: Sequence[LatencySeries], *, simulated: bool = False) -> str:
    """TTFT and ITL (p50) against load, one line per configuration."""
    tips: dict[str, str] = {}
    # Stacked, not side by side: two panels in one row leave a phone ~6 px text.
    with _figure(5.0, 5.6) as fig:
        left, right = fig.subplots(2, 1, sharex=True)
        xs: list[float] = []
        for i, s in enumerate(series):
            colour = colours.series_colour(s.label, i)
            for ax, values, what in ((left, s.ttft_ms_p50, "TTFT"), (right, s.itl_ms_p50, "ITL")):
                pts = [(c, v) for c, v in zip(s.concurrency, values, strict=True) if v is not None]
                if not pts:
                    continue
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    color=colour,
                    label=plain_text(s.label),
                )
                for c, v in pts:
                    gid = f"tip-{len(tips)}"
                    ax.plot([c], [v], marker="o", ms=4, color=colour, gid=gid)
                    tips[gid] = f"{s.label}: {what} p50 {v:.1f} ms at concurrency {c}"
                xs += [p[0] for p in pts]
        for ax, title in ((left, "TTFT p50 (ms)"), (right, "ITL p50 (ms)")):
            _log2_axis(ax, xs)
            ax.set_title(title)
        right.set_xlabel("concurrency")
        left.legend(loc="upper left")
        return add_tooltips(to_svg(fig, "latency", simulated=simulated), "latency", tips)


def throughput_latency_svg(series: Sequence[LatencySeries], *, simulated: bool = False) -> str:
    """Aggregate output tokens/s against ITL p50, one curve per configuration over load
    (the trade-off view of vLLM's benchmark sweep plots)."""
    tips: dict[str, str] = {}
    with _figure(5.0, 3.8) as fig:
        ax = fig.add_subplot()
        for i, s in enumerate(series):
            colour = colours.series_colour(s.label, i)
            pts = [
                (c, x, y)
                for c, x, y in zip(s.concurrency, s.itl_ms_p50, s.output_tokens_per_s, strict=True)
                if x is not None and y is not None
            ]
            if not pts:
                continue
            ax.plot(
                [p[1] for p in pts], [p[2] for p in pts], color=colour, label=plain_text(s.label)
            )
            for c, x, y in pts:
                gid = f"tip-{len(tips)}"
                ax.plot([x], [y], marker="o", ms=4, color=colour, gid=gid)
                ax.annotate(f"c={c}", (x, y), fontsize=9, xytext=(3, 3), textcoords="offset points")
                tips[gid] = f"{s.label} at concurrency {c}: {y:.0f} tok/s, ITL p50 {x:.1f} ms"
        ax.set_xlabel("ITL p50 (ms per token, lower is more interactive)")
        ax.set_ylabel("output tokens/s (all streams)")
        ax.set_title("Throughput vs latency")
        ax.legend(loc="best")
        return add_tooltips(to_svg(fig, "tput-latency", simulated=simulated), "tput-latency", tips)


def heatmap_svg(
    concurrency: int,
    steps: Sequence[int],
    topks: Sequence[int],
    speedup: Sequence[Sequence[float | None]],
    draft_tokens: Sequence[Sequence[int | None]],
    *,
    tones: Sequence[Sequence[str]] = (),
    pick_cell: tuple[int, int] | None = None,
    pick_key: str | None = None,
    simulated: bool = False,
) -> str:
    """Best speedup per (num_steps, topk); unmeasured cells hatched grey, cells within
    noise of 1.0x plain (``tones``, from each cell's interval; the 2% noise band where
    none is given), the pick's cell outlined in the pick's colour."""
    tips: dict[str, str] = {}
    values = np.array([[np.nan if v is None else v for v in row] for row in speedup], dtype=float)
    finite = values[np.isfinite(values)]
    lo = min(float(finite.min()) if finite.size else 1.0, 0.95)
    hi = max(float(finite.max()) if finite.size else 1.0, 1.05)
    norm = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi)
    cmap = matplotlib.colormaps["RdBu"].resampled(16)
    # Wide enough for its two-line title and legend even with one topk column.
    with _figure(max(4.2, 1.6 + 0.95 * len(topks)), max(3.2, 1.5 + 0.48 * len(steps))) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        for i, s in enumerate(steps):
            for j, k in enumerate(topks):
                v = speedup[i][j]
                gid = f"tip-{len(tips)}"
                if v is None:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            facecolor=UNMEASURED,
                            hatch="///",
                            edgecolor="#bbbbbb",
                            lw=0,
                            gid=gid,
                        )
                    )
                    tips[gid] = f"num_steps {s}, topk {k}: not tested"
                    continue
                cell_tone = tones[i][j] if tones else colours.tone(v * 0.98, v * 1.02)
                neutral = cell_tone == colours.TONE_NEUTRAL
                face = WITHIN_NOISE if neutral else cmap(norm(v))
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=face, lw=0, gid=gid))
                n = draft_tokens[i][j]
                tips[gid] = f"num_steps {s}, topk {k}: best {v:.2f}x with num_draft_tokens {n}"
                dark = not neutral and abs(float(norm(v)) - 0.5) > 0.3
                ax.text(
                    j,
                    i,
                    f"{v:.2f}x\nn={n}",
                    ha="center",
                    va="center",
                    fontsize=9.5,
                    color="white" if dark else "black",
                )
        handles = [Rectangle((0, 0), 1, 1, facecolor=WITHIN_NOISE, edgecolor="#999999", lw=0.5)]
        labels = ["within noise of 1.0x"]
        if pick_cell is not None:
            i, j = pick_cell
            ax.add_patch(
                Rectangle(
                    (j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor=colours.PICK, lw=3
                )
            )
            handles.append(Rectangle((0, 0), 1, 1, fill=False, edgecolor=colours.PICK, lw=2))
            labels.append(f"pick {pick_key}'s cell" if pick_key else "the pick's cell")
        ax.set_xlim(-0.5, len(topks) - 0.5)
        ax.set_ylim(len(steps) - 0.5, -0.5)
        ax.set_xticks(range(len(topks)), [str(k) for k in topks])
        ax.set_yticks(range(len(steps)), [str(s) for s in steps])
        ax.set_xlabel("topk (--speculative-eagle-topk)")
        ax.set_ylabel("num_steps")
        # A figure title, not the axes': constrained layout keeps it inside the figure,
        # where a long axes title over a narrow grid was cut at both page widths.
        fig.suptitle(
            f"Best speedup at concurrency {concurrency}\n(n = draft tokens; hatched = not tested)",
            fontsize=10.5,
        )
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncols=len(handles),
            frameon=False,
        )
        mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        bar = fig.colorbar(mappable, ax=ax, label="speedup vs no speculation", shrink=0.9)
        if bar.solids is not None:
            bar.solids.set_rasterized(False)
        return add_tooltips(to_svg(fig, "heatmap", simulated=simulated), "heatmap", tips)


def acceptance_position_svg(data: AcceptanceByPosition, *, simulated: bool = False) -> str:
    """Share of verify steps that accept the draft token at each tree depth."""
    tips: dict[str, str] = {}
    with _figure(5.0, 3.0) as fig:
        ax = fig.add_subplot()
        for pos, rate in zip(data.positions, data.accept_rate, strict=True):
            gid = f"tip-{len(tips)}"
            ax.bar([pos], [rate], color=colours.other_colour(0), gid=gid)
            tips[gid] = f"position {pos}: accepted in {rate:.0%} of verify steps"
        ax.set_ylim(0, 1)
        ax.set_xticks(data.positions, [str(p) for p in data.positions])
        ax.set_xlabel("draft position (depth in the accepted path)")
        ax.set_ylabel("acceptance rate")
        ax.set_title(
            plain_text(
                f"Acceptance by draft position, {data.config_key} ({data.requests} requests)"
            )
        )
        return add_tooltips(to_svg(fig, "accept-pos", simulated=simulated), "accept-pos", tips)


__all__ = [
    "PART_COLOURS",
    "acceptance_position_svg",
    "add_tooltips",
    "break_even_svg",
    "heatmap_svg",
    "latency_svg",
    "step_breakdown_svg",
    "throughput_latency_svg",
]
