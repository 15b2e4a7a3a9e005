"""The recommendation: which configuration to run at each load, and up to what load.

This is the one place that turns trial rows into advice, so the sweep's results.json,
the HTML report, the Markdown summary and the terminal can never disagree. The decision
itself (per-load picks with intervals, ties within noise to the cheaper tree, the
three-way verdict, the break-even interpolated only between measured loads) is
``decision.decide``; this module keeps results.json's older fields (``best``,
``break_even``, ``verdict_reason``) consistent with it and adds ``recommendations``,
``verdict`` and ``defaults``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.rundir.decision import Outcome, decide
from specbench.rundir.defaults import DefaultComparison, compare_defaults
from specbench.rundir.recommend import (
    KIND_OFF,
    KIND_SPECULATE,
    KIND_SPECULATE_BELOW,
    NOISE_MARGIN,
    IntervalSource,
    completed_speculative_rows,
)
from specbench.rundir.recommend import interpolate_break_even as _interpolate
from specbench.spec_config import BASELINE_KEY, SpecConfig

STATUS_NEVER_PAYS = "never-pays"
STATUS_CROSSES = "crosses"
STATUS_PAYS_EVERYWHERE = "pays-everywhere-measured"
#: No verdict on speed is possible: no baseline at the primary concurrency (speedup NaN)
#: or no speculative configuration completed at all.
STATUS_UNKNOWN = "unknown"

HOST_STAGED = "host-staged"

#: Builds (speculative flags, copyable launch line) of a configuration. The engine
#: adapter supplies it (``EngineAdapter.launch_line``): the verdict only names the
#: configuration, the engine knows how to spell it.
LaunchLine = Callable[[SpecConfig], tuple[list[str], str]]


@dataclass
class Verdict:
    """The recommendation as plain JSON-ready data (results.json "best", "break_even",
    "verdict_reason")."""

    best: dict[str, Any] | None
    break_even: dict[str, Any]
    reason: str
    simulated: bool = False
    #: Every configuration ranked at the primary concurrency, best first (for the report).
    ranking: list[dict[str, Any]] = field(default_factory=list)
    #: The per-load decision and the named defaults at every load.
    outcome: Outcome | None = None
    defaults: list[DefaultComparison] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return KIND_OFF if self.outcome is None else self.outcome.verdict.kind

    @property
    def status(self) -> str:
        return str(self.break_even["status"])

    @property
    def speculation_recommended(self) -> bool:
        return bool(self.break_even["speculation_recommended"])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "best": self.best,
            "break_even": self.break_even,
            "verdict_reason": self.reason,
        }
        if self.outcome is not None:
            out.update(self.outcome.to_json())
        out["defaults"] = [d.to_json() for d in self.defaults]
        return out


def finite(value: Any) -> float | None:
    """A float, or None for missing/NaN/inf (pandas NA included): how every report
    module turns a table cell into a number it may show."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_concurrency(value: float) -> str:
    """A concurrency for a sentence: integers stay integers, interpolated ones get 1 digit."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def config_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean tau and speedup per (configuration, concurrency) over completed rows.

    A configuration can be measured by several trials (a repeated grid point, a
    re-run); averaging them keeps one row per configuration for every view.
    """
    columns = ["config_key", "num_steps", "topk", "num_draft_tokens", "concurrency"]
    empty: pd.DataFrame = pd.DataFrame(columns=[*columns, "tau", "speedup", "trials"])
    done = completed_speculative_rows(trials)
    if done.empty:
        return empty
    done["tau"] = pd.to_numeric(done["tau"], errors="coerce")
    done["speedup"] = pd.to_numeric(done["speedup"], errors="coerce")
    grouped = done.groupby(columns, as_index=False).agg(
        tau=("tau", "mean"), speedup=("speedup", "mean"), trials=("trial_number", "nunique")
    )
    out: pd.DataFrame = grouped.reset_index(drop=True)
    return out


def rank_configs(table: pd.DataFrame, concurrency: int) -> list[dict[str, Any]]:
    """Configurations at one concurrency, best first.

    Order: highest speedup (missing speedups last), then higher tau, then fewer draft
    tokens (cheaper verify, less memory), then the key for a stable order.
    """
    rows = table[table["concurrency"] == concurrency]
    ranked: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        ranked.append(
            {
                "config_key": str(row.config_key),
                "num_steps": int(row.num_steps),
                "topk": int(row.topk),
                "num_draft_tokens": int(row.num_draft_tokens),
                "tau": finite(row.tau),
                "speedup": finite(row.speedup),
            }
        )

    def order(item: dict[str, Any]) -> tuple[int, float, float, int, str]:
        speed, tau = item["speedup"], item["tau"]
        return (
            0 if speed is not None else 1,
            -(speed if speed is not None else 0.0),
            -(tau if tau is not None else 0.0),
            item["num_draft_tokens"],
            item["config_key"],
        )

    ranked.sort(key=order)
    return ranked


def interpolate_break_even(
    low_c: int, low_speedup: float, high_c: int, high_speedup: float
) -> float:
    """Concurrency where speedup crosses 1.0, linear in log(concurrency), never beyond
    the measured interval (see ``recommend.interpolate_break_even``)."""
    return _interpolate(low_c, low_speedup, high_c, high_speedup)


_STATUS_OF_KIND = {
    KIND_SPECULATE: STATUS_PAYS_EVERYWHERE,
    KIND_SPECULATE_BELOW: STATUS_CROSSES,
    KIND_OFF: STATUS_NEVER_PAYS,
}


def compute_verdict(
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    *,
    launch_line: LaunchLine | None = None,
    plain_launch: str | None = None,
    intervals: IntervalSource | None = None,
    defaults: Mapping[str, SpecConfig] | None = None,
    simulated: bool = False,
    hardware_class: str | None = None,
) -> Verdict:
    """The per-load recommendations, the verdict for mixed load and its break-even.

    ``trials`` are TRIAL_COLUMNS rows (normalise_trials); ``concurrencies[0]`` is the
    primary concurrency the ``ranking`` is made at. ``launch_line`` (the engine
    adapter's) spells a configuration and ``plain_launch`` is the same server without
    speculation; without them launch lines are empty. ``intervals`` is the fallback for
    rows that carry no ``speedup_ci_low``/``speedup_ci_high``; ``defaults`` names the
    configurations a user would otherwise launch (the model card's, the engine's own).
    ``hardware_class`` only changes the wording: a host-staged interconnect is named as
    the reason when nothing pays.
    """
    if not concurrencies:
        raise ValueError("compute_verdict needs at least one concurrency")
    primary = int(concurrencies[0])
    table = config_table(trials)
    ranking = rank_configs(table, primary)

    def line(config: SpecConfig | None) -> str:
        if config is None:
            return plain_launch or ""
        return launch_line(config)[1] if launch_line is not None else ""

    outcome = decide(
        trials,
        concurrencies,
        line,
        intervals=intervals,
        baseline_loads=_baseline_loads(trials),
        simulated=simulated,
        host_staged=hardware_class == HOST_STAGED,
    )
    v = outcome.verdict
    known = any(r.speedup is not None for r in outcome.recommendations)
    status = _STATUS_OF_KIND[v.kind] if known else STATUS_UNKNOWN
    best = None
    if v.config is not None:
        best = _best(v.config, table, primary, launch_line, simulated)
    return Verdict(
        best=best,
        break_even={
            "concurrency": v.break_even,
            "status": status,
            "speculation_recommended": v.kind != KIND_OFF,
            "reason": v.reason,
        },
        reason=v.reason,
        simulated=simulated,
        ranking=ranking,
        outcome=outcome,
        defaults=compare_defaults(outcome.per_load, defaults or {}),
    )


def _baseline_loads(trials: pd.DataFrame) -> list[int]:
    """Concurrencies with a completed baseline: a speedup exists only there."""
    if trials.empty:
        return []
    rows = trials[
        (trials["config_key"].astype(str) == BASELINE_KEY)
        & (trials["state"].astype(str) == "complete")
    ]
    return sorted({int(c) for c in pd.to_numeric(rows["concurrency"], errors="coerce").dropna()})


def _best(
    config: SpecConfig,
    table: pd.DataFrame,
    primary: int,
    launch_line: LaunchLine | None,
    simulated: bool,
) -> dict[str, Any]:
    """The mixed-load pick in results.json's ``best`` shape."""
    rows = table[table["config_key"] == config.key].sort_values("concurrency")
    curve = {int(r.concurrency): finite(r.speedup) for r in rows.itertuples(index=False)}
    at_primary = rows[rows["concurrency"] == primary]
    tau = finite(at_primary["tau"].iloc[0]) if not at_primary.empty else None
    flags, command = launch_line(config) if launch_line is not None else (None, None)
    return {
        **config.as_dict(),
        "config_key": config.key,
        "tau": tau,
        "speedup": curve.get(primary),
        "concurrency": primary,
        "speedup_by_concurrency": {str(c): s for c, s in curve.items()},
        "flags": flags,
        "launch_command": command,
        "simulated": simulated,
    }


__all__ = [
    "HOST_STAGED",
    "NOISE_MARGIN",
    "STATUS_CROSSES",
    "STATUS_NEVER_PAYS",
    "STATUS_PAYS_EVERYWHERE",
    "STATUS_UNKNOWN",
    "LaunchLine",
    "Verdict",
    "compute_verdict",
    "config_table",
    "finite",
    "format_concurrency",
    "interpolate_break_even",
    "rank_configs",
]
