"""The request-rate loads in the report: the SLO-rate headline side by side, the pick at
each rate, and TPOT/TTFT (p50 beside p99, the SLO drawn), goodput and the
latency-throughput frontier against the offered rate.

Read from results.json's ``rates`` (verdict.rate_decision computed it once, where the
sweep wrote it), so the page says what the console said. Kept apart from the closed-loop
verdict views: a run without rate loads renders exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from matplotlib.figure import Figure

from specbench.report import colours
from specbench.report.plots import plain_text, to_svg
from specbench.spec_config import BASELINE_KEY

#: Configurations drawn at most (the baseline, the recommended one, the per-rate picks).
MAX_CURVES = 5
#: Their colours, in that order: the report's own for no speculation and for the pick.
PALETTE = (colours.NO_SPECULATION, colours.PICK, *colours.OTHERS)


@dataclass
class RateFigure:
    name: str
    caption: str
    svg: Markup


@dataclass
class RateView:
    """What the rate section shows, as plain values (and drawn figures)."""

    headline: str | None
    slo_text: str
    saturation_per_s: float | None
    slo_rates: list[tuple[str, str]]
    picks: list[dict[str, Any]]
    flags: list[str]
    figures: list[RateFigure] = field(default_factory=list)
    #: The rate, arrival and window plan in one phrase.
    plan: str = ""


def _label(key: str) -> str:
    return "no speculation" if key == BASELINE_KEY else key


def _shortlist(rates: Mapping[str, Any]) -> list[str]:
    keys = [BASELINE_KEY]
    for key in [rates.get("recommended"), *(p["config_key"] for p in rates.get("per_load", []))]:
        if isinstance(key, str) and key not in keys:
            keys.append(key)
    return keys[:MAX_CURVES]


def _series(rows: Sequence[Mapping[str, Any]], key: str, name: str) -> list[tuple[float, float]]:
    points = [
        (float(r["rate_per_s"]), float(r[name]))
        for r in rows
        if r["config_key"] == key and isinstance(r.get(name), (int, float))
    ]
    return sorted(points)


def _limit(rates: Mapping[str, Any], metric: str) -> list[tuple[int, float]]:
    return [
        (int(o["percentile"]), float(o["limit_ms"]))
        for o in rates.get("slo", [])
        if o.get("metric") == metric
    ]


def _latency_svg(
    rates: Mapping[str, Any], keys: Sequence[str], metric: str, simulated: bool
) -> str:
    rows = rates["rows"]
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for colour, key in zip(PALETTE, keys, strict=False):
        for pct, style in (("p50", "--"), ("p99", "-")):
            pts = _series(rows, key, f"{metric}_ms_{pct}")
            if pts:
                xs, ys = zip(*pts, strict=True)
                label = f"{plain_text(_label(key))} {pct}"
                ax.plot(xs, ys, style, color=colour, marker="o", markersize=3, label=label)
    for percentile, limit in _limit(rates, metric):
        ax.axhline(limit, color="#b00020", linewidth=1.2, linestyle=":")
        ax.annotate(f"SLO p{percentile} {limit:g} ms", (0.01, limit), xycoords=("axes fraction", "data"),
                    color="#b00020", fontsize=8, va="bottom")  # fmt: skip
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel(f"{metric.upper()} (ms)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    return to_svg(fig, f"rate-{metric}", simulated=simulated)


def _goodput_svg(rates: Mapping[str, Any], keys: Sequence[str], simulated: bool) -> str:
    rows = rates["rows"]
    name = "goodput_per_s" if rates.get("slo") else "achieved_rate_per_s"
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    top = max(float(r["rate_per_s"]) for r in rows)
    ax.plot([0, top], [0, top], color="#999999", linewidth=0.8, linestyle=":", label="offered")
    for colour, key in zip(PALETTE, keys, strict=False):
        pts = _series(rows, key, name)
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "-o", color=colour, markersize=3, label=plain_text(_label(key)))
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("goodput (requests/s within the SLO)" if rates.get("slo") else "served (req/s)")
    ax.legend(fontsize=7)
    return to_svg(fig, "rate-goodput", simulated=simulated)


def _frontier_svg(rates: Mapping[str, Any], keys: Sequence[str], tp: int, simulated: bool) -> str:
    """Output tokens/s per user against output tokens/s per GPU (TP counted), one curve
    per configuration along its rates (vllm bench sweep's plot_pareto draws the same)."""
    rows = rates["rows"]
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for colour, key in zip(PALETTE, keys, strict=False):
        pts = sorted(
            (float(r["output_tokens_per_s"]) / tp, float(r["output_tokens_per_s_per_user"]))
            for r in rows
            if r["config_key"] == key
            and isinstance(r.get("output_tokens_per_s"), (int, float))
            and isinstance(r.get("output_tokens_per_s_per_user"), (int, float))
        )
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "-o", color=colour, markersize=3, label=plain_text(_label(key)))
    ax.set_xlabel(f"output tokens/s per GPU (TP {tp})")
    ax.set_ylabel("output tokens/s per user")
    ax.legend(fontsize=7)
    return to_svg(fig, "rate-frontier", simulated=simulated)


def build_rate_view(
    rates: Mapping[str, Any] | None, *, tp: int | None, simulated: bool, notes: list[str]
) -> RateView | None:
    """The section's data and figures; None for a run without rate loads. A figure that
    cannot be drawn is a note, never a lost report."""
    if not rates or not rates.get("rows"):
        return None
    keys = _shortlist(rates)
    view = RateView(
        headline=rates.get("headline"),
        slo_text=str(rates.get("slo_text") or ""),
        saturation_per_s=rates.get("saturation_per_s"),
        slo_rates=[(_label(e["config_key"]), _describe(e)) for e in rates.get("slo_rates", [])],
        picks=[
            {**p, "label": _label(p["config_key"]), "load": f"{float(p['rate_per_s']):.3g} req/s"}
            for p in rates.get("per_load", [])
        ],
        flags=[
            f"{_label(r['config_key'])} @ {float(r['rate_per_s']):.3g} req/s: {r['flags']}"
            for r in rates["rows"]
            if r.get("flags")
        ],
        plan=_plan(rates),
    )
    wanted: list[tuple[str, str, Callable[[], str]]] = [
        ("tpot", "TPOT against the offered rate, p50 dashed and p99 solid; the SLO dotted.",
         lambda: _latency_svg(rates, keys, "tpot", simulated)),
        ("ttft", "TTFT against the offered rate (queueing shows here first).",
         lambda: _latency_svg(rates, keys, "ttft", simulated)),
        ("goodput", "Goodput: requests per second that met every objective (vllm bench "
         "serve's definition), against the rate offered.",
         lambda: _goodput_svg(rates, keys, simulated)),
        ("frontier", "Latency-throughput frontier: the speed each user sees against the "
         "output each GPU gives, one point per rate.",
         lambda: _frontier_svg(rates, keys, tp or 1, simulated)),
    ]  # fmt: skip
    for name, caption, draw in wanted:
        try:
            view.figures.append(RateFigure(name, caption, Markup(draw())))
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            notes.append(f"The rate {name} plot could not be drawn: {type(exc).__name__}: {exc}")
    return view


def _describe(entry: Mapping[str, Any]) -> str:
    rate, high = float(entry.get("rate_per_s") or 0.0), entry.get("high_per_s")
    if entry.get("at_top") or high is None:
        return f"at least {rate:.3g} req/s"
    return f"{rate:.3g} req/s [{rate:.3g}-{float(high):.3g}]"


def _plan(rates: Mapping[str, Any]) -> str:
    plan = rates.get("plan") or {}
    sweep = plan.get("sweep")
    if sweep:
        what = f"{sweep['rates']} rates up to the baseline's saturation ({sweep['arrival']})"
    else:
        loads = plan.get("loads") or []
        arrival = loads[0]["arrival"] if loads else ""
        named = ", ".join(f"{float(load['rate_per_s']):g}" for load in loads)
        what = f"rates {named} req/s ({arrival})"
    window = float(plan.get("min_window_s", 0))
    return f"{what}, at least {window:g} s or {plan.get('requests_per_load')} requests each"


def rate_markdown(view: RateView | None) -> str:
    """The same section for the Markdown report."""
    if view is None:
        return ""
    lines = ["", "## Request-rate loads", ""]
    if view.headline:
        lines += [f"**{view.headline}**", ""]
    lines.append(f"Loads: {view.plan}.")
    if view.saturation_per_s:
        lines.append(f"Baseline saturation (burst): {view.saturation_per_s:.3g} req/s.")
    if view.slo_rates:
        lines += ["", f"| configuration | highest rate within {view.slo_text} |", "|---|---|"]
        lines += [f"| {label} | {text} |" for label, text in view.slo_rates[:10]]
    if view.picks:
        lines += ["", "| offered rate | pick | by | vs no speculation |", "|---|---|---|---|"]
        for p in view.picks:
            gain = f"{p['gain']:.2f}x" if p.get("gain") else "-"
            lines.append(f"| {p['load']} | {p['label']} | {p['by']} | {gain} |")
    for flag in view.flags[:20]:
        lines.append(f"- {flag}")
    return "\n".join(lines) + "\n"


__all__ = ["MAX_CURVES", "RateFigure", "RateView", "build_rate_view", "rate_markdown"]
