"""A short Markdown summary for CI job summaries: verdict, flags, top-5, SIMULATED note.

Job summaries render Markdown with inline HTML enabled, so any text that came from a run
is escaped here too (angle brackets, pipes that would break a table, backticks).
"""

from __future__ import annotations

from specbench.report.views import ReportData
from specbench.rundir.verdict import STATUS_NEVER_PAYS

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


def render_markdown(data: ReportData) -> str:
    o, v = data.overview, data.verdict
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
    lines.append(f"**{md_text(v.headline)}**")
    lines.append("")
    lines.append(md_text(v.reason))
    lines.append("")
    if v.launch_command:
        if v.recommended:
            label = "Launch command"
        elif v.status == STATUS_NEVER_PAYS:
            label = "Least bad configuration (speculation OFF)"
        else:
            label = "Highest-tau configuration (speedup unknown, not recommended yet)"
        lines.append(f"{label}:")
        lines.append("")
        # A fenced block shows its content literally; fences inside are impossible because
        # the command is built by specbench from a preset and numbers.
        lines.append("```sh")
        lines.append(v.launch_command.replace("```", "'''"))
        lines.append("```")
        lines.append("")
    lines.append(f"Break-even: {md_text(v.break_even_text)}")
    lines.append("")
    hw = data.hardware
    lines.append(
        f"Hardware: {md_text(hw.name)} ({md_text(hw.interconnect_class)}"
        + (f", TP {hw.tp}" if hw.tp else "")
        + f"); {o.num_trials} trials, {o.num_completed} completed, {o.num_failed} failed."
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
