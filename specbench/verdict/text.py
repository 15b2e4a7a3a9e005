"""The decision in plain lines, for the terminal, a CI log and ``predict``.

Read from results.json's stored decision rather than recomputed, so that the terminal, a
CI summary and a re-read run directory print exactly what results.json says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from specbench.verdict.candidates import KIND_NO_FIT, format_concurrency
from specbench.verdict.decision import Decision
from specbench.verdict.headline import interval_text
from specbench.verdict.picks import LoadPick

#: Exclusion reasons printed in full; the rest are counted.
EXCLUSION_LINES = 3


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """The decision as plain lines, from results.json's fields ([] before a decision)."""
    decision = Decision.from_results(results)
    return [] if decision is None else decision_lines(decision)


def decision_lines(d: Decision) -> list[str]:
    """Headline first, then why, the per-load picks with launch lines, and the defaults."""
    lines = [d.headline.text]
    if d.headline.pick_reason:
        lines.append(f"  why {d.config.key if d.config else 'this'}: {d.headline.pick_reason}")
    be = ""
    if d.break_even_range is not None:
        shown = d.break_even_range.range_text()
        about = "" if shown.endswith("+") else "~"
        be = f" (break-even {about}{shown} concurrent requests)"
    elif d.break_even is not None:
        be = f" (break-even ~{format_concurrency(d.break_even)} concurrent requests)"
    lines += [f"verdict: {d.kind}{be}", d.reason]
    if d.kind != KIND_NO_FIT:
        for c in d.unfit_loads:
            lines.append(f"  at concurrency {c}: does not fit in GPU memory (see the memory check)")
    for pick in d.loads:
        lines.append(f"  at concurrency {pick.concurrency}: {_load_text(pick)}")
        lines.append(f"    {pick.launch}")
    if d.kind == KIND_NO_FIT:
        if d.launch:
            lines.append(f"  instead: {d.launch}")
        return lines
    for x in d.defaults:
        cells = [
            f"{interval_text(p)} at {c}" if p is not None else f"not tested at {c}"
            for c, p in x.points.items()
        ]
        lines.append(f"  {x.name} ({x.config.key}): {', '.join(cells)}")
    lines += [f"  {note}" for note in d.headline.notes]
    lines += exclusion_lines(d)
    return lines


def _load_text(pick: LoadPick) -> str:
    if pick.config is not None:
        text = pick.config.key
        if pick.speedup is not None and pick.speedup_ci is not None:
            low, high = pick.speedup_ci
            text += f" {pick.speedup:.2f}x [{low:.2f}-{high:.2f}]"
        if pick.equivalent:
            text += f", cheapest of {len(pick.equivalent) + 1} within noise"
        if pick.fastest is not None and pick.fastest.config != pick.config:
            text += f" (fastest {pick.fastest.key} {interval_text(pick.fastest)})"
        return text
    text = "off (no speculation)"
    if pick.best_speculative is not None:
        text += f"; best tree {pick.best_speculative.key} {interval_text(pick.best_speculative)}"
    return text


def exclusion_lines(d: Decision) -> list[str]:
    """What was filtered out before ranking, grouped by reason."""
    if not d.excluded:
        return []
    reasons = Counter(e.reason for e in d.excluded)
    lines = [f"  not recommended: {len(d.excluded)} (configuration, load) pairs that cannot run:"]
    for reason, count in reasons.most_common(EXCLUSION_LINES):
        lines.append(f"    {count} x {reason}")
    if len(reasons) > EXCLUSION_LINES:
        lines.append(f"    and {len(reasons) - EXCLUSION_LINES} other reasons")
    return lines


__all__ = ["decision_lines", "exclusion_lines", "summary_lines"]
