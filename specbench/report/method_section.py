"""The methods side by side: per load, each speculative method's best measured settings.

A sweep over several methods (``--method``, or a fixed list naming them) answers a
deployer's first question, which method, before the settings: for every load the best
configuration of each method with its speedup interval, tau and its own losslessness
check, and which method wins there. Methods the performance model does not describe
(n-gram, suffix, DFlash) are labelled measured only: they never carry a prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specbench.spec_config import EAGLE3
from specbench.spec_methods import method

#: Rows of results.json "trials" that count: measured, speculative.
_COMPLETE = "complete"


@dataclass(frozen=True)
class MethodRow:
    """One method's best configuration at one load."""

    load: int
    method: str
    config_key: str
    speedup: float
    ci: tuple[float | None, float | None]
    tau: float | None
    measured_only: bool
    lossless: str

    @property
    def speedup_text(self) -> str:
        low, high = self.ci
        if low is None or high is None:
            return f"{self.speedup:.2f}x"
        return f"{self.speedup:.2f}x [{low:.2f}-{high:.2f}]"


@dataclass(frozen=True)
class MethodView:
    """The section: rows by load (each load's methods best first) and one line each."""

    rows: tuple[MethodRow, ...]
    headlines: tuple[str, ...]


def _lossless_text(counts: Mapping[str, Any] | None) -> str:
    if not counts or not counts.get("checked"):
        return "not checked"
    return f"{counts.get('matched', 0)}/{counts['checked']}"


def _best_rows(trials: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], Mapping[str, Any]]:
    best: dict[tuple[int, str], Mapping[str, Any]] = {}
    for row in trials:
        if row.get("config_key") == "baseline" or row.get("state") != _COMPLETE:
            continue
        speedup, load = row.get("speedup"), row.get("concurrency")
        if not isinstance(speedup, (int, float)) or not isinstance(load, int):
            continue
        name = str(row.get("method") or EAGLE3)
        held = best.get((load, name))
        if held is None or float(speedup) > float(held["speedup"]):
            best[(load, name)] = row
    return best


def build_method_view(results: Mapping[str, Any]) -> MethodView | None:
    """The section of a run that measured two methods or more (None otherwise)."""
    trials = results.get("trials") or []
    best = _best_rows(trials)
    if len({name for _, name in best}) < 2:
        return None
    lossless = (results.get("losslessness") or {}).get("by_method") or {}
    rows: list[MethodRow] = []
    headlines: list[str] = []
    for load in sorted({load for load, _ in best}):
        at_load = sorted(
            ((name, row) for (held, name), row in best.items() if held == load),
            key=lambda item: -float(item[1]["speedup"]),
        )
        for name, row in at_load:
            tau = row.get("tau")
            rows.append(
                MethodRow(
                    load=load,
                    method=name,
                    config_key=str(row["config_key"]),
                    speedup=float(row["speedup"]),
                    ci=(row.get("speedup_ci_low"), row.get("speedup_ci_high")),
                    tau=float(tau) if isinstance(tau, (int, float)) else None,
                    measured_only=not method(name).priced,
                    lossless=_lossless_text(lossless.get(name)),
                )
            )
        top = rows[-len(at_load)]
        headlines.append(
            f"At concurrency {load}: {top.method} ({top.config_key}) {top.speedup_text}"
            + ("" if len(at_load) < 2 else f", ahead of {rows[-len(at_load) + 1].method}")
        )
    return MethodView(tuple(rows), tuple(headlines))


def method_markdown(view: MethodView | None) -> str:
    """The section in the Markdown report (empty without one)."""
    if view is None:
        return ""
    lines = ["", "## Methods side by side", ""]
    lines += [f"- {headline}" for headline in view.headlines]
    lines += [
        "",
        "| Concurrency | Method | Best settings | Speedup | tau | Lossless | Model |",
        "|---:|---|---|---|---:|---|---|",
    ]
    for r in view.rows:
        tau = "-" if r.tau is None else f"{r.tau:.2f}"
        model = "measured only" if r.measured_only else "priced"
        lines.append(
            f"| {r.load} | {r.method} | {r.config_key} | {r.speedup_text} | {tau} | "
            f"{r.lossless} | {model} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["MethodRow", "MethodView", "build_method_view", "method_markdown"]
