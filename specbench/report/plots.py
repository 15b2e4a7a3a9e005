"""Plots as small inline SVG strings, drawn from the plain data of data.py.

Inline SVG keeps the report one file that opens from disk with no network: text stays
text (``svg.fonttype: none``, so no glyph outlines bloat the file), nothing is
rasterised, and every id inside a plot gets the plot's own prefix, because matplotlib
derives clip-path ids from a hash and two plots of the same size would otherwise share
them in one HTML document.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from specbench.report import colours
from specbench.report.views import (
    AllReduceSeries,
    Heatmap,
    OptimizationHistory,
    PredictionCheck,
    Series,
    TauDistribution,
)
from specbench.verdict.candidates import format_concurrency

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "specbench",
    "font.family": "sans-serif",
    # Sized for a phone: a 5 in figure shown 370 px wide keeps 9 pt text near 10 px.
    "font.size": 10.5,
    "axes.titlesize": 11.0,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 9.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "path.simplify": True,
}

_RC: Any = _STYLE  # rc_context's stub wants literal keys; the dict above is checked at run time


_XML_HEAD = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<!--.*?-->\s*", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_HREF = re.compile(r'(xlink:href|href)="#([^"]+)"')
_SIZE = re.compile(r'<svg([^>]*?)\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"')


def plain_text(text: str) -> str:
    """A label safe from matplotlib's mathtext: a ``$`` in a dataset string is literal."""
    return text.replace("$", r"\$")


@contextmanager
def _figure(width: float = 5.0, height: float = 3.4) -> Iterator[Figure]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        try:
            yield fig
        finally:
            fig.clear()


def to_svg(fig: Figure, prefix: str, *, simulated: bool = False) -> str:
    """The figure as an SVG fragment for inlining, ids made unique by ``prefix``.

    A SIMULATED figure gets its stamp in a strip of its own below everything the layout
    places (legends under the axes included), so it never covers a legend."""
    if simulated:
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):
            strip = 0.2 / fig.get_figheight()  # 0.2 in, whatever the figure's height
            engine.set(rect=(0.0, strip, 1.0, 1.0 - strip))
        fig.text(
            0.005,
            0.005,
            "SIMULATED",
            ha="left",
            va="bottom",
            fontsize=10,
            color="#b00020",
            alpha=0.7,
            fontweight="bold",
        )
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = _XML_HEAD.sub("", buf.getvalue())
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = _HREF.sub(lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', svg)
    # Scale with the page: keep the viewBox, let CSS size the element.
    svg = _SIZE.sub(
        lambda m: (
            f'<svg{m.group(1)} width="{m.group(2)}pt" height="{m.group(3)}pt" '
            f'class="plot" role="img" aria-label="{prefix}"'
        ),
        svg,
        count=1,
    )
    return svg.strip()


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n:g} B"


def heatmap_svg(data: Heatmap, *, simulated: bool = False) -> str:
    """Best speedup per (num_steps, topk), annotated with the speedup and draft tokens."""
    values = np.array(
        [[np.nan if v is None else v for v in row] for row in data.speedup], dtype=float
    )
    with _figure(1.3 + 1.0 * len(data.topks), max(2.8, 1.0 + 0.48 * len(data.steps))) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        finite = values[np.isfinite(values)]
        # Diverging around 1.0 (the baseline) whatever the range: blue pays, red loses.
        norm = TwoSlopeNorm(
            vcenter=1.0,
            vmin=min(float(finite.min()), 0.95),
            vmax=max(float(finite.max()), 1.05),
        )
        # pcolormesh, not imshow: imshow is embedded in SVG as a PNG, this stays vector.
        image = ax.pcolormesh(
            np.arange(len(data.topks) + 1) - 0.5,
            np.arange(len(data.steps) + 1) - 0.5,
            np.ma.masked_invalid(values),
            cmap=matplotlib.colormaps["RdBu"].resampled(16),
            norm=norm,
        )
        ax.set_xticks(range(len(data.topks)), [str(k) for k in data.topks])
        ax.set_yticks(range(len(data.steps)), [str(s) for s in data.steps])
        ax.set_xlabel("topk (--speculative-eagle-topk)")
        ax.set_ylabel("num_steps")
        ax.set_title(f"Best speedup at concurrency {data.concurrency} (n = draft tokens)")
        for i, row in enumerate(data.speedup):
            for j, v in enumerate(row):
                if v is None:
                    continue
                n = data.draft_tokens[i][j]
                dark = abs(float(norm(v)) - 0.5) > 0.3
                ax.text(
                    j,
                    i,
                    f"{v:.2f}x\nn={n}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        bar = fig.colorbar(image, ax=ax, label="speedup vs no speculation", shrink=0.9)
        if bar.solids is not None:
            bar.solids.set_rasterized(False)  # matplotlib rasterises long colour bars
        return to_svg(fig, "heatmap", simulated=simulated)


def tau_vs_draft_tokens_svg(series: Sequence[Series], *, simulated: bool = False) -> str:
    with _figure() as fig:
        ax = fig.add_subplot()
        for i, s in enumerate(series):
            xs = [x for x, y in zip(s.x, s.y, strict=True) if y is not None]
            ys = [y for y in s.y if y is not None]
            ax.plot(xs, ys, marker="o", ms=4, color=colours.other_colour(i), label=s.label)
        ax.set_xlabel("num_draft_tokens (--speculative-num-draft-tokens)")
        ax.set_ylabel("tau (accepted tokens per verify)")
        ax.set_title("Acceptance vs verified draft tokens (best over num_steps)")
        ax.legend(loc="lower right")
        return to_svg(fig, "tau-ndt", simulated=simulated)


def speedup_vs_concurrency_svg(
    series: Sequence[Series],
    *,
    recommended: str | None,
    break_even: float | None,
    simulated: bool = False,
) -> str:
    with _figure() as fig:
        ax = fig.add_subplot()
        all_x: list[float] = []
        for i, s in enumerate(series):
            xs = [x for x, y in zip(s.x, s.y, strict=True) if y is not None]
            ys = [y for y in s.y if y is not None]
            all_x += xs
            best = s.label.split(" (=")[0] == recommended
            ax.plot(
                xs,
                ys,
                marker="o",
                ms=5 if best else 3.5,
                lw=2.4 if best else 1.2,
                color=colours.PICK if best else colours.other_colour(i),
                label=s.label + (" (pick)" if best else ""),
            )
        ax.axhline(
            1.0, color=colours.NO_SPECULATION, lw=1.2, ls="--", label="no speculation (1.0x)"
        )
        if break_even is not None:
            ax.axvline(
                break_even,
                color="#b00020",
                lw=1,
                ls=":",
                label=f"break-even ~{format_concurrency(break_even)}",
            )
        ax.set_xscale("log", base=2)
        ticks = sorted(set(all_x))
        if ticks:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("speedup vs no speculation")
        ax.set_title("Speedup vs load, top configurations")
        ax.legend(loc="best")
        return to_svg(fig, "speedup-conc", simulated=simulated)


def tau_distribution_svg(data: TauDistribution, *, simulated: bool = False) -> str:
    """Box plot per domain; outliers are dropped to keep the SVG small (p10/p90 in the table)."""
    with _figure(5.0, 3.2) as fig:
        ax = fig.add_subplot()
        samples = [data.samples[d] for d in data.domains]
        ax.boxplot(
            samples,
            showfliers=False,
            whis=(10, 90),
            patch_artist=True,
            boxprops={"facecolor": "#cfe3f3"},
            medianprops={"color": "#333333", "lw": 1.6},
        )
        ax.set_xticks(
            range(1, len(data.domains) + 1),
            [plain_text(f"{d} (n={len(data.samples[d])})") for d in data.domains],
        )
        ax.set_ylabel("per-request tau")
        ax.set_title(plain_text(f"tau per domain, {data.source} (whiskers p10-p90)"))
        return to_svg(fig, "tau-domain", simulated=simulated)


#: Where a trial's configuration came from, coloured as the role it stands for.
_SOURCE_COLOURS = {"card": colours.MODEL_CARD, "sglang-auto": colours.AUTOMATIC}


def history_svg(data: OptimizationHistory, *, simulated: bool = False) -> str:
    with _figure() as fig:
        ax = fig.add_subplot()
        sources = sorted(set(data.sources))
        for i, source in enumerate(sources):
            xs = [n for n, s in zip(data.trial_numbers, data.sources, strict=True) if s == source]
            ys = [v for v, s in zip(data.speedups, data.sources, strict=True) if s == source]
            ax.scatter(
                xs,
                ys,
                s=14,
                color=_SOURCE_COLOURS.get(source, colours.other_colour(i)),
                label=plain_text(source),
                zorder=3,
            )
        ax.step(
            data.trial_numbers,
            data.best_so_far,
            where="post",
            color="#555555",
            lw=1.4,
            label="best so far",
        )
        ax.axhline(1.0, color=colours.NO_SPECULATION, lw=1, ls="--", label="no speculation")
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"speedup at concurrency {data.concurrency}")
        ax.set_title("Optimization history")
        ax.legend(loc="lower right", ncols=2)
        return to_svg(fig, "history", simulated=simulated)


def prediction_svg(data: PredictionCheck, *, simulated: bool = False) -> str:
    with _figure(4.6, 4.0) as fig:
        ax = fig.add_subplot()
        concurrencies = sorted({p.concurrency for p in data.points})
        lo, hi = math.inf, -math.inf
        for i, c in enumerate(concurrencies):
            pts = [p for p in data.points if p.concurrency == c]
            xs = [p.measured for p in pts]
            ys = [p.predicted for p in pts]
            lo, hi = min(lo, *xs, *ys), max(hi, *xs, *ys)
            ax.scatter(xs, ys, s=12, color=colours.other_colour(i), label=f"concurrency {c}")
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot(
            [lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=1, ls="--", label="y = x"
        )
        ax.set_xlabel("measured speedup")
        ax.set_ylabel("predicted speedup (model, SIMULATED)")
        ax.set_title("Model prediction vs measurement")
        ax.legend(loc="upper left")
        ax.set_aspect("equal", adjustable="datalim")
        return to_svg(fig, "prediction", simulated=simulated)


def allreduce_svg(series: Sequence[AllReduceSeries], *, simulated: bool = False) -> str:
    with _figure(5.0, 3.4) as fig:
        ax = fig.add_subplot()
        for i, s in enumerate(series):
            ax.plot(
                s.bytes,
                s.latency_us,
                marker="o" if s.measured else None,
                ms=3.5,
                ls="-" if s.measured else "--",
                color=colours.other_colour(i),
                label=plain_text(s.label),
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sizes = sorted({b for s in series for b in s.bytes})
        if sizes:
            shown = sizes[:: max(1, math.ceil(len(sizes) / 6))]  # labels that do not collide
            ax.set_xticks(shown, [_fmt_bytes(b) for b in shown])
            ax.minorticks_off()
        ax.set_xlabel("message size")
        ax.set_ylabel("all-reduce latency (us)")
        ax.set_title("All-reduce latency")
        ax.legend(loc="upper left")
        return to_svg(fig, "allreduce", simulated=simulated)


def empty_svg_figure() -> str:
    """A bare figure; the benchmark's reference for what one plot costs."""
    with _figure() as fig:
        ax = fig.add_subplot()
        ax.plot([1, 2, 3], [1, 4, 9])
        return to_svg(fig, "reference")


__all__ = [
    "allreduce_svg",
    "empty_svg_figure",
    "heatmap_svg",
    "history_svg",
    "plain_text",
    "prediction_svg",
    "speedup_vs_concurrency_svg",
    "tau_distribution_svg",
    "tau_vs_draft_tokens_svg",
    "to_svg",
]
