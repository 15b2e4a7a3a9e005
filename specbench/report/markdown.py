"""A short Markdown summary for CI job summaries: the verdict, the per-load picks with
their intervals and launch lines, the defaults compared, top-5, SIMULATED note.

Job summaries render Markdown with inline HTML enabled, so any text that came from a run
is escaped here too (angle brackets, pipes that would break a table, backticks).
"""

from __future__ import annotations

from specbench.report.verdict_views import Interval
from specbench.report.views import ReportData

_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "\n": " ",
        "\r": " ",
    }
)


def md_text(text: str) -> str:
    """Text that renders literally in GitHub-flavoured Markdown (and its inline HTML)."""
    return str(text).translate(_ESCAPES)


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _n(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _iv(interval: Interval | None) -> str:
    return "n/a" if interval is None else md_text(interval.text)


def _verdict_lines(data: ReportData) -> list[str]:
    """Headline, reason, per-load table, defaults compared and launch lines."""
    sec = data.verdict_section
    s = sec.screen
    lines = [f"**{md_text(s.headline)}** (`{s.kind}`)", "", md_text(s.sentence), ""]
    if s.pick_reason:
        lines += [md_text(f"Why {s.config_key}: {s.pick_reason}"), ""]
    if s.memory_fits is False:
        lines += [md_text(s.memory), ""]
    lines += [md_text(s.reason), ""]
    lines += ["| Concurrency | Launch | Speedup [95% interval] | Equivalent within noise |"]
    lines += ["|---:|---|---|---|"]
    for r in s.loads:
        if r.config_key:
            what, speed = f"`{r.config_key}`", _iv(r.speedup)
        else:
            what = "**no speculation**"
            speed = "off" + (
                f"; best tree `{r.best_tree}` {_iv(r.best_tree_speedup)}" if r.best_tree else ""
            )
        equivalent = ", ".join(f"`{k}`" for k in r.equivalent[:6]) or "none"
        lines.append(f"| {r.concurrency} | {what} | {speed} | {equivalent} |")
    lines.append("")
    if s.comparison:
        lines.append("| Configuration | " + " | ".join(f"at {c}" for c in s.concurrencies) + " |")
        lines.append("|---|" + "---|" * len(s.concurrencies))
        for row in s.comparison:
            cells = [
                _iv(c) if c else ("not tested" if row.config_key else "off") for c in row.cells
            ]
            lines.append(f"| {md_text(row.name)} | " + " | ".join(cells) + " |")
        lines.append("")
    # A fenced block shows its content literally; the lines are built by specbench from a
    # preset and numbers, so they hold no fence.
    lines += ["Launch lines:", "", "```sh"]
    seen: list[str] = []
    for r in s.loads:
        if r.launch and r.launch not in seen:
            seen.append(r.launch)
            lines.append(f"# concurrency {r.concurrency}: {r.config_key or 'no speculation'}")
            lines.append(r.launch.replace("```", "'''"))
    lines += ["```", "", f"Break-even: {md_text(sec.break_even_sentence)}", ""]
    return lines


def render_markdown(data: ReportData) -> str:
    o = data.overview
    lines: list[str] = []
    sim = " (SIMULATED)" if data.simulated else ""
    lines.append(f"## specbench: {md_text(o.target)}{sim}")
    lines.append("")
    if data.simulated:
        lines.append(
            "> **SIMULATED**: every number below comes from specbench's performance model "
            f"(backend `{o.backend}`), not from a GPU measurement."
        )
        lines.append("")
    lines += _verdict_lines(data)
    hw = data.hardware
    lines.append(
        f"Hardware: {md_text(hw.name)} ({md_text(hw.interconnect_class)}"
        + (f", TP {hw.tp}" if hw.tp else "")
        + f"); {o.trials_text}."
    )
    lines.append("")
    for check in data.engine_checks:
        lines.append(f"- {md_text(check)}")
    if data.engine_checks:
        lines.append("")
    if data.top:
        concurrencies = o.concurrencies
        header = ["#", "Config", "tau", *[f"speedup @{c}" for c in concurrencies]]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for row in data.top:
            cells = [str(row.rank), f"`{row.config_key}`", _n(row.tau)]
            cells += [_x(row.speedups.get(c)) for c in concurrencies]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if data.simulated:
            lines.append("_All table values are SIMULATED._")
            lines.append("")
    return "\n".join(lines)


__all__ = ["md_text", "render_markdown"]
