"""The verdict in plain lines, read back from results.json's fields.

Read from the JSON contract rather than from objects, so that the terminal, a CI log
and a re-read run directory print exactly what results.json says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specbench.rundir.break_even import range_text_of
from specbench.rundir.recommend import format_concurrency


def _interval_text(speedup: Any, ci: Any) -> str:
    if not isinstance(speedup, (int, float)):
        return "n/a"
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"{speedup:.2f}x [{ci[0]:.2f}-{ci[1]:.2f}]"
    return f"{speedup:.2f}x"


def _break_even_note(verdict: Mapping[str, Any]) -> str:
    """`` (break-even 5 (4-7) concurrent requests)``, with its interval where recorded."""
    shown = range_text_of(verdict.get("break_even_range"))
    if shown is not None:
        about = "" if shown.endswith("+") else "~"
        return f" (break-even {about}{shown} concurrent requests)"
    if isinstance(verdict.get("break_even"), (int, float)):
        return (
            f" (break-even ~{format_concurrency(float(verdict['break_even']))} concurrent requests)"
        )
    return ""


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """The verdict and the per-load picks as plain lines, from results.json's fields.

    Read from the JSON contract rather than from objects so that the terminal, a CI
    summary and a re-read run directory print exactly what results.json says.
    """
    verdict = results.get("verdict")
    recs = results.get("recommendations")
    if not isinstance(verdict, Mapping) or not isinstance(recs, list):
        return []
    lines = [f"verdict: {verdict.get('kind')}" + _break_even_note(verdict)]
    lines.append(str(verdict.get("reason", "")))
    for rec in recs:
        if not isinstance(rec, Mapping):
            continue
        config = rec.get("config")
        c = rec.get("concurrency")
        if isinstance(config, Mapping):
            what = (
                f"{config.get('key')} {_interval_text(rec.get('speedup'), rec.get('speedup_ci'))}"
            )
            equivalent = rec.get("equivalent") or []
            if equivalent:
                what += f", {len(equivalent)} more within noise"
        else:
            best = rec.get("best_speculative")
            what = "off (no speculation)"
            if isinstance(best, Mapping) and isinstance(best.get("config"), Mapping):
                what += (
                    f"; best tree {best['config'].get('key')} "
                    f"{_interval_text(best.get('speedup'), best.get('speedup_ci'))}"
                )
        lines.append(f"  at concurrency {c}: {what}")
        lines.append(f"    {rec.get('launch', '')}")
    for item in results.get("defaults") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("config"), Mapping):
            continue
        cells = []
        for c, point in (item.get("by_concurrency") or {}).items():
            if isinstance(point, Mapping):
                cells.append(
                    f"{_interval_text(point.get('speedup'), point.get('speedup_ci'))} at {c}"
                )
            else:
                cells.append(f"not tested at {c}")
        lines.append(f"  {item.get('name')} ({item['config'].get('key')}): {', '.join(cells)}")
    return lines


__all__ = ["summary_lines"]
