"""How a gate result is shown: a rich table, JUnit XML for CI test tabs, Markdown summaries.

All three are drawn from the same GateResult so they can never disagree; numbers are
formatted once here (_format_value) so the terminal, the XML and the Markdown show the
same digits. All three also follow one rule of what to show: the rows that changed
beyond noise (regressed or improved, significantly and past the threshold) and a count
of the rest, because a 273-row table of "-0.0%" hides the one row that matters.
``verbose`` shows every row.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from specbench.errors import BadInputError
from specbench.gate.results import (
    METRIC_COMPLETED,
    METRIC_LABELS,
    METRIC_SPEEDUP,
    GateResult,
    GateRow,
    Status,
    shorten_difference,
)
from specbench.gate.stats import METHOD_MWU, METHOD_NONE, METHOD_PAIRED, METHOD_T_CI

SIMULATED_NOTE = "SIMULATED: a run comes from the sim backend (the model), not from hardware."

#: Rows shown without --verbose: those that changed beyond noise.
NOTABLE = (Status.REGRESSION, Status.IMPROVED)

#: Up to this many "not compared" cells are listed one by one without --verbose;
#: more are a count per reason (two searches that measured different trees would
#: otherwise print a hundred lines above the table).
NOT_COMPARED_LISTED = 3

_STYLES = {
    Status.PASS: "green",
    Status.REGRESSION: "bold red",
    Status.INSIGNIFICANT: "yellow",
    Status.IMPROVED: "cyan",
    Status.INFO: "dim",
}


def format_value(row: GateRow, value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if row.metric == METRIC_COMPLETED:
        return "yes" if value else "FAILED"
    if row.metric == METRIC_SPEEDUP:
        return f"{value:.3f}x"
    if row.metric == "tau":
        return f"{value:.3f}"
    return f"{value:.1f}"


def format_change(row: GateRow) -> str:
    return "n/a" if not math.isfinite(row.change) else f"{row.change:+.1%}"


def format_test(row: GateRow, alpha: float) -> str:
    """The p-value (paired signed-rank or Mann-Whitney) or the fallback used, as one cell."""
    if row.method == METHOD_PAIRED and row.p_value is not None:
        return f"p={row.p_value:.2g} (paired, n={row.n_baseline}/{row.n_candidate})"
    if row.method == METHOD_MWU and row.p_value is not None:
        return f"p={row.p_value:.2g} (MWU, n={row.n_baseline}/{row.n_candidate})"
    if row.method == METHOD_T_CI:
        level = f"{1 - alpha:.1%}"
        return f"{level} t-CI (n={row.n_baseline}/{row.n_candidate})"
    if row.method == METHOD_NONE:
        return f"too few samples (n={row.n_baseline}/{row.n_candidate})"
    return row.note or "-"


def metric_label(row: GateRow) -> str:
    label = METRIC_LABELS.get(row.metric, row.metric)
    if row.metric == METRIC_COMPLETED:
        return label
    if row.concurrency == 0:  # a rate-load row: a bracket or an aggregate, never a median
        return f"{label} ({row.statistic}{', ' + row.note if row.note.startswith('at ') else ''})"
    return f"{label} ({row.statistic})" if row.metric == METRIC_SPEEDUP else f"{label} (median)"


def shown_rows(result: GateResult, verbose: bool = False) -> list[GateRow]:
    """Every row with ``verbose``, else only those that regressed or improved."""
    return list(result.rows) if verbose else [r for r in result.rows if r.status in NOTABLE]


def unchanged_line(result: GateResult, verbose: bool = False) -> str | None:
    """How many rows are not shown and why, or None when every row is shown."""
    hidden = [r for r in result.rows if r not in shown_rows(result, verbose)]
    if not hidden:
        return None
    counts = Counter(r.status for r in hidden)
    details = [f"{counts[Status.PASS]} within threshold"] if counts[Status.PASS] else []
    if counts[Status.INSIGNIFICANT]:
        details.append(f"{counts[Status.INSIGNIFICANT]} past it but not significant")
    if counts[Status.INFO]:
        details.append(f"{counts[Status.INFO]} informational")
    noun = "metric" if len(hidden) == 1 else "metrics"
    return (
        f"{len(hidden)} {noun} unchanged within noise ({', '.join(details)}); --verbose lists all"
    )


def not_compared_lines(result: GateResult, verbose: bool = False) -> list[str]:
    """Each cell not compared (all with ``verbose`` or when few), else one count line."""
    items = result.not_compared
    if verbose or len(items) <= NOT_COMPARED_LISTED:
        return [f"not compared: {line}" for line in items]
    reasons = Counter(line.split(": ", 1)[-1] for line in items)
    detail = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return [f"not compared: {len(items)} cells ({detail}); --verbose lists each"]


def answer_lines(result: GateResult) -> list[str]:
    """What the gate says before any detail: the verdict, then the recommendation."""
    lines = [result.summary_line()]
    if result.picks is not None:
        lines.append(result.picks.line())
    return lines


def header_lines(result: GateResult) -> list[str]:
    """Context lines shown above the table in every format."""
    opts = result.options
    lines = [
        f"baseline:  {result.baseline['source']} ({result.baseline['backend']}, "
        f"{result.baseline['hardware'] or 'unknown hardware'}, specbench {result.baseline['specbench_version']})",
        f"candidate: {result.candidate['source']} ({result.candidate['backend']}, "
        f"{result.candidate['hardware'] or 'unknown hardware'}, specbench {result.candidate['specbench_version']})",
        f"fails on a drop past tau -{opts.max_tau_drop:.1%}, speedup "
        f"-{opts.max_speedup_drop:.1%}, tok/s -{opts.threshold('output_tokens_per_s'):.1%} "
        f"that is significant at alpha {opts.alpha:g}",
    ]
    if result.hardware_differences:
        lines.append(
            "FORCED: the hardware differs (" + "; ".join(result.hardware_differences) + ")"
        )
    if result.workload_differences:
        lines.append(
            "FORCED: the workloads differ ("
            + "; ".join(shorten_difference(d) for d in result.workload_differences)
            + ")"
        )
    return lines


def print_result(
    result: GateResult, console: Console | None = None, *, verbose: bool = False
) -> None:
    """The answer first (verdict and reason, the recommendation), then the context
    lines, the rows that changed (all with ``verbose``), what was not compared and the
    count of the unchanged rest."""
    console = console or Console(width=None if _is_terminal() else 140)
    verdict, *picks = answer_lines(result)
    style = "bold red" if result.regressions else "bold green"
    # soft_wrap: the answer lines are never broken mid-sentence by the console
    console.print(verdict, style=style, markup=False, highlight=False, soft_wrap=True)
    changed = result.picks is not None and result.picks.matters is not False
    for line in picks:
        console.print(
            line,
            style="bold yellow" if changed else None,
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for line in header_lines(result):
        console.print(line, markup=False, highlight=False)
    if result.simulated:
        console.print(SIMULATED_NOTE, style="bold magenta", markup=False)
    rows = shown_rows(result, verbose)
    if rows:
        console.print(_table(result, rows))
    for line in not_compared_lines(result, verbose):
        console.print(line, markup=False, highlight=False)
    rest = unchanged_line(result, verbose)
    if rest is not None:
        console.print(rest, markup=False, highlight=False)


def _table(result: GateResult, rows: list[GateRow]) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for name, justify in (
        ("metric", "left"),
        ("config", "left"),
        ("conc.", "right"),
        ("baseline", "right"),
        ("candidate", "right"),
        ("change", "right"),
        ("p-value / method", "left"),
        ("status", "left"),
    ):
        # fold, not "…": a narrow terminal wraps a cell instead of cutting its digits
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            metric_label(row),
            row.config_key,
            str(row.concurrency) if row.concurrency else "rate",
            format_value(row, row.baseline_value),
            format_value(row, row.candidate_value),
            format_change(row),
            format_test(row, result.options.alpha),
            row.status.symbol,
            style=_STYLES[row.status],
        )
    return table


def _is_terminal() -> bool:
    return Console().is_terminal


def render_gate_markdown(result: GateResult, verbose: bool = False) -> str:
    """A Markdown section for a CI job summary ($GITHUB_STEP_SUMMARY)."""
    verdict = "❌ regression" if result.regressions else "✅ pass"
    out = [f"## specbench gate: {verdict}", ""]
    out += [
        f"**{_md_escape(line)}**" if i == 0 else _md_escape(line)
        for i, line in enumerate(answer_lines(result))
    ]
    out.append("")
    if result.simulated:
        out += [f"> **{SIMULATED_NOTE}**", ""]
    out += [f"- {_md_escape(line)}" for line in header_lines(result)]
    rows = shown_rows(result, verbose)
    if rows:
        out += [
            "",
            "| metric | config | concurrency | baseline | candidate | change | p-value / method | status |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
    for row in rows:
        status = (
            f"**{row.status.symbol}**" if row.status is Status.REGRESSION else row.status.symbol
        )
        cells = [
            metric_label(row),
            row.config_key,
            str(row.concurrency) if row.concurrency else "rate",
            format_value(row, row.baseline_value),
            format_value(row, row.candidate_value),
            format_change(row),
            format_test(row, result.options.alpha),
            status,
        ]
        out.append("| " + " | ".join(_md_escape(c) for c in cells) + " |")
    if result.not_compared:
        out += [""] + [f"- {_md_escape(line)}" for line in not_compared_lines(result, verbose)]
    rest = unchanged_line(result, verbose)
    if rest is not None:
        out += ["", _md_escape(rest)]
    out.append("")
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def junit_tree(result: GateResult, verbose: bool = False) -> ET.ElementTree[ET.Element]:
    """One test case per shown metric x config x concurrency (regressions are
    <failure>s) and one passing case that counts the unchanged rest."""
    rows = shown_rows(result, verbose)
    rest = unchanged_line(result, verbose)
    suites = ET.Element("testsuites", name="specbench gate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="specbench.gate",
        tests=str(len(rows) + (rest is not None)),
        failures=str(len(result.regressions)),
        errors="0",
        skipped="0",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("baseline", str(result.baseline["source"])),
        ("candidate", str(result.candidate["source"])),
        ("simulated", str(result.simulated).lower()),
        ("alpha", f"{result.options.alpha:g}"),
        ("forced", str(result.forced).lower()),
        *(() if result.picks is None else (("recommendation", result.picks.line()),)),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    if rest is not None:
        unchanged = ET.SubElement(
            suite, "testcase", classname="specbench.gate.unchanged", name="unchanged", time="0"
        )
        ET.SubElement(unchanged, "system-out").text = rest
    for row in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"specbench.gate.{row.metric}",
            name=f"{row.metric}[{row.config_key}, c={row.concurrency}]",
            time="0",
        )
        case_props = ET.SubElement(case, "properties")
        for key, value in row.as_dict().items():
            if value is None or value == "":
                continue
            text = ",".join(f"{v:.6g}" for v in value) if isinstance(value, list) else _prop(value)
            ET.SubElement(case_props, "property", name=key, value=text)
        if row.status is Status.REGRESSION:
            failure = ET.SubElement(
                case,
                "failure",
                message=(
                    f"{row.config_key} c={row.concurrency}: {row.note}"
                    if row.metric == METRIC_COMPLETED
                    else f"{row.metric} {row.config_key} c={row.concurrency} dropped "
                    f"{format_change(row)} (threshold -{row.threshold:.1%}; "
                    f"{format_test(row, result.options.alpha)})"
                ),
                type="regression",
            )
            failure.text = (
                f"baseline {format_value(row, row.baseline_value)} -> candidate "
                f"{format_value(row, row.candidate_value)}"
            )
        elif row.note:
            out = ET.SubElement(case, "system-out")
            out.text = f"{row.status.value}: {row.note}"
    if result.not_compared:
        out = ET.SubElement(suite, "system-out")
        out.text = "\n".join(not_compared_lines(result, verbose))
    ET.indent(suites)
    return ET.ElementTree(suites)


def _prop(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_junit(result: GateResult, path: Path | str, *, verbose: bool = False) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        junit_tree(result, verbose).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write JUnit XML: {exc.strerror or exc}") from None
    return path


def write_markdown(result: GateResult, path: Path | str, *, verbose: bool = False) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_gate_markdown(result, verbose), encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot write Markdown: {exc.strerror or exc}") from None
    return path


__all__ = [
    "NOTABLE",
    "SIMULATED_NOTE",
    "answer_lines",
    "format_change",
    "format_test",
    "format_value",
    "junit_tree",
    "not_compared_lines",
    "print_result",
    "render_gate_markdown",
    "shown_rows",
    "unchanged_line",
    "write_junit",
    "write_markdown",
]
