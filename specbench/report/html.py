"""The HTML report: one self-contained file that opens from disk, offline.

Templates, CSS and JS ship inside the package and are inlined; plots are inline SVG.
A Content-Security-Policy allows no network at all and only the report's own script
(by hash), so even a string that slipped past escaping could not run or fetch anything.
Every value from a run (prompts, errors, server log tails) goes through jinja2's
autoescape; only what specbench itself produced (SVG, CSS, JS) is marked safe.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from specbench.errors import BadInputError
from specbench.report import plots, verdict_plots
from specbench.report.data import report_data
from specbench.report.markdown import render_markdown
from specbench.report.method_section import MethodView, build_method_view, method_markdown
from specbench.report.rate_section import RateView, build_rate_view, rate_markdown
from specbench.report.views import ReportData
from specbench.rundir.layout import RunDirectory
from specbench.schema import write_text_atomic

FORMATS = ("html", "md")
_TEMPLATE_PACKAGE = "specbench.report"


@dataclass
class Figure:
    name: str
    caption: str
    svg: Markup


def asset(name: str) -> str:
    """A template, stylesheet or script shipped in the package."""
    return (
        resources.files(_TEMPLATE_PACKAGE)
        .joinpath("templates")
        .joinpath(name)
        .read_text(encoding="utf-8")
    )


def environment() -> jinja2.Environment:
    """The report's jinja2 environment; ``shell_split`` splits a launch line into its
    shell words, so that the page can wrap it between flags and never inside one."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_TEMPLATE_PACKAGE, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shell_split"] = shlex.split
    return env


def content_security_policy(script: str) -> str:
    """No network, inline styles (matplotlib's SVG uses style attributes), one script."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _draw(name: str, draw: Callable[[], str], notes: list[str]) -> Markup | None:
    """One plot; a plot that cannot be drawn costs that plot, never the whole report.

    The sweep renders the report after hours of measurement, so an odd corner of the
    data (a single point, a degenerate range) must not lose the rest of the report.
    """
    try:
        return Markup(draw())
    except (ValueError, TypeError, RuntimeError, ArithmeticError, IndexError, KeyError) as exc:
        notes.append(f"The {name} plot could not be drawn: {type(exc).__name__}: {exc}")
        return None


def build_figures(data: ReportData) -> tuple[list[Figure], Markup | None]:
    """(plots section figures, hardware all-reduce figure), skipping those without data."""
    sim = data.simulated
    wanted: list[tuple[str, str, Callable[[], str]]] = []
    heat, tau_ndt, curves = data.heatmap, data.tau_vs_draft_tokens, data.speedup_vs_concurrency
    dist, history, prediction = data.tau_distribution, data.history, data.prediction
    if heat is not None:
        wanted.append(
            (
                "heatmap",
                f"Best speedup over num_draft_tokens for each (num_steps, topk), at concurrency "
                f"{heat.concurrency}; blue beats the baseline and red loses to it beyond noise, "
                "near-white cells are within noise of it (their interval includes 1.0x), "
                "hatched grey was not tested"
                + (f", the outlined cell holds the pick {heat.pick_key}" if heat.pick_cell else "")
                + ". Hover a cell for its numbers.",
                lambda: verdict_plots.heatmap_svg(
                    heat.concurrency,
                    heat.steps,
                    heat.topks,
                    heat.speedup,
                    heat.draft_tokens,
                    tones=heat.tones,
                    pick_cell=heat.pick_cell,
                    pick_key=heat.pick_key,
                    simulated=sim,
                ),
            )
        )
    if tau_ndt:
        wanted.append(
            (
                "tau-ndt",
                "tau (accepted tokens per verify step) against the verified draft-token budget, "
                "best over num_steps, one line per topk.",
                lambda: plots.tau_vs_draft_tokens_svg(tau_ndt, simulated=sim),
            )
        )
    if curves:
        wanted.append(
            (
                "speedup-conc",
                "Speedup of the top configurations at every concurrency tested; the dashed "
                "line is the baseline (1.0x). Speculation pays only above it.",
                lambda: plots.speedup_vs_concurrency_svg(
                    curves,
                    recommended=data.verdict_section.screen.config_key,
                    break_even=data.verdict.break_even,
                    simulated=sim,
                ),
            )
        )
    if dist is not None:
        wanted.append(
            (
                "tau-domain",
                f"Per-request tau by prompt domain, {dist.source}.",
                lambda: plots.tau_distribution_svg(dist, simulated=sim),
            )
        )
    if history is not None:
        wanted.append(
            (
                "history",
                f"Speedup at concurrency {history.concurrency} by trial number, coloured by "
                "where the configuration came from; the line is the best found so far.",
                lambda: plots.history_svg(history, simulated=sim),
            )
        )
    if prediction is not None:
        wanted.append(
            (
                "prediction",
                "Speedup predicted by the performance model (SIMULATED) against the measured "
                "speedup; points on the dashed line were predicted exactly.",
                lambda: plots.prediction_svg(prediction, simulated=sim),
            )
        )
    figures: list[Figure] = []
    for name, caption, draw in wanted:
        svg = _draw(name, draw, data.notes)
        if svg is not None:
            figures.append(Figure(name, caption, svg))
    allreduce = None
    if data.hardware.allreduce:
        series = data.hardware.allreduce
        allreduce = _draw(
            "all-reduce", lambda: plots.allreduce_svg(series, simulated=sim), data.notes
        )
    return figures, allreduce


def build_verdict_figures(data: ReportData) -> tuple[dict[str, Markup | None], list[Figure]]:
    """(break-even and step-time plots, latency section figures) of the verdict section."""
    sec, sim = data.verdict_section, data.simulated
    named: dict[str, Markup | None] = {"break_even": None, "step_time": None}
    if sec.break_even.series:
        named["break_even"] = _draw(
            "break-even",
            lambda: verdict_plots.break_even_svg(sec.break_even, simulated=sim),
            data.notes,
        )
    if sec.why.steps:
        steps = sec.why.steps
        named["step_time"] = _draw(
            "step-time", lambda: verdict_plots.step_breakdown_svg(steps), data.notes
        )
    wanted: list[tuple[str, str, Callable[[], str]]] = []
    if any(any(v is not None for v in s.itl_ms_p50) for s in sec.latency):
        wanted.append(
            (
                "latency",
                "Time to first token and inter-token latency (p50) against load: what a user "
                "of the server feels. Hover a point for its value.",
                lambda: verdict_plots.latency_svg(sec.latency, simulated=sim),
            )
        )
        wanted.append(
            (
                "tput-latency",
                "Throughput against latency over load (each point a concurrency): up and to "
                "the left is better; a configuration to the right of no speculation trades "
                "latency for nothing.",
                lambda: verdict_plots.throughput_latency_svg(sec.latency, simulated=sim),
            )
        )
    if sec.acceptance is not None:
        acceptance = sec.acceptance
        wanted.append(
            (
                "accept-pos",
                "Acceptance rate by draft position, from the engine's per-request accept "
                "histograms.",
                lambda: verdict_plots.acceptance_position_svg(acceptance, simulated=sim),
            )
        )
    figures = []
    for name, caption, draw in wanted:
        svg = _draw(name, draw, data.notes)
        if svg is not None:
            figures.append(Figure(name, caption, svg))
    return named, figures


def render_html(
    data: ReportData,
    *,
    run_dir: Path | str = "",
    rates: RateView | None = None,
    methods: MethodView | None = None,
) -> str:
    """The complete HTML document for one run (``rates``: its request-rate section;
    ``methods``: its methods side by side)."""
    figures, allreduce = build_figures(data)
    named, latency_figures = build_verdict_figures(data)
    sec = data.verdict_section
    script = asset("report.js")
    template = environment().get_template("report.html")
    return template.render(
        d=data,
        o=data.overview,
        v=data.verdict,
        s=sec.screen,
        w=sec.why,
        be_text=sec.screen.break_even_text,
        be_sentence=sec.break_even_sentence,
        be_caption=sec.break_even_caption,
        ci_text=sec.ci_text,
        ci_level=95,
        hw=data.hardware,
        hw_measured=any(s.measured for s in data.hardware.allreduce),
        figures=figures,
        latency_figures=latency_figures,
        plots={"allreduce": allreduce, **named},
        css=Markup(asset("report.css")),
        js=Markup(script),
        csp=content_security_policy(script),
        run_dir=str(run_dir),
        rates=rates,
        methods=methods,
    )


def _rate_view(run_path: Path, data: ReportData) -> RateView | None:
    """The request-rate section of a run that has rate loads (results.json "rates")."""
    run = RunDirectory(run_path)
    tp = run.read_manifest().hardware.get("tp")
    return build_rate_view(
        run.read_results().get("rates"),
        tp=tp if isinstance(tp, int) else None,
        simulated=data.simulated,
        notes=data.notes,
    )


def render_report(
    run_dir: Path | str, output: Path | str | None = None, *, fmt: str = "html"
) -> Path:
    """Render the report of ``run_dir`` to ``output`` (default RUN_DIR/report.html or .md).

    Returns the path written. Raises BadInputError for an unknown format or a directory
    that is not a run, FileFormatError for a malformed run file.
    """
    if fmt not in FORMATS:
        raise BadInputError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    run_path = Path(run_dir)
    data = report_data(run_path)
    target = Path(output) if output is not None else run_path / f"report.{fmt}"
    if target.is_dir():
        raise BadInputError(f"{target}: is a directory; give a file name with -o")
    rates = _rate_view(run_path, data)
    methods = build_method_view(RunDirectory(run_path).read_results())
    text = (
        render_markdown(data) + rate_markdown(rates) + method_markdown(methods)
        if fmt == "md"
        else render_html(data, run_dir=run_path, rates=rates, methods=methods)
    )
    write_text_atomic(target, text)
    return target


__all__ = [
    "FORMATS",
    "asset",
    "content_security_policy",
    "environment",
    "render_html",
    "render_report",
]
