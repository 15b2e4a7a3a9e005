"""The recommendation: which configuration to run, and up to what load it pays.

This is the one place that turns trial rows into advice, so the sweep's results.json,
the HTML report and the Markdown summary can never disagree. The rules are deliberately
simple and conservative: a configuration only "pays" when it beats the baseline by more
than the noise margin, and the break-even concurrency is interpolated only between
concurrencies that were actually measured, never extrapolated past them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.spec_config import BASELINE_KEY, SpecConfig

#: A configuration must beat the baseline by more than this fraction to count as paying:
#: smaller differences are within run-to-run noise of a closed-loop benchmark.
NOISE_MARGIN = 0.02

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

    @property
    def status(self) -> str:
        return str(self.break_even["status"])

    @property
    def speculation_recommended(self) -> bool:
        return bool(self.break_even["speculation_recommended"])

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best, "break_even": self.break_even, "verdict_reason": self.reason}


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
    if trials.empty:
        return empty
    done = trials[
        (trials["state"].astype(str) == "complete")
        & (trials["config_key"].astype(str) != BASELINE_KEY)
        & trials["num_steps"].notna()
    ].copy()
    if done.empty:
        return empty
    for name in ("num_steps", "topk", "num_draft_tokens", "concurrency"):
        done[name] = done[name].astype(int)
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
    """Concurrency where speedup crosses 1.0, linear in log(concurrency).

    Throughput curves are roughly linear in log load, so a geometric interpolation
    between 8 and 32 gives a believable ~16 rather than the arithmetic 20. Clamped to the
    measured interval: a curve that stops paying (within noise) without dropping below
    1.0 breaks even at the higher measured point, not beyond it.
    """
    if low_speedup == high_speedup:
        return float(high_c)
    frac = (low_speedup - 1.0) / (low_speedup - high_speedup)
    frac = min(max(frac, 0.0), 1.0)
    return float(math.exp(math.log(low_c) + frac * (math.log(high_c) - math.log(low_c))))


def compute_verdict(
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    *,
    launch_line: LaunchLine | None = None,
    simulated: bool = False,
    hardware_class: str | None = None,
    noise_margin: float = NOISE_MARGIN,
) -> Verdict:
    """The recommended configuration and its break-even concurrency.

    ``trials`` are TRIAL_COLUMNS rows (normalise_trials); ``concurrencies[0]`` is the
    primary concurrency the configurations are ranked at. ``hardware_class`` (the
    manifest's interconnect class) only changes the wording: a host-staged interconnect
    is named as the reason when nothing pays. Without ``launch_line`` the best
    configuration carries no flags and no launch command.
    """
    if not concurrencies:
        raise ValueError("compute_verdict needs at least one concurrency")
    primary = int(concurrencies[0])
    threshold = 1.0 + noise_margin
    table = config_table(trials)
    ranking = rank_configs(table, primary)
    prefix = "SIMULATED: " if simulated else ""

    if not ranking:
        reason = (
            f"No speculative configuration completed at concurrency {primary}, "
            "so there is nothing to recommend; keep speculation off until one runs."
        )
        return Verdict(
            best=None,
            break_even={
                "concurrency": None,
                "status": STATUS_UNKNOWN,
                "speculation_recommended": False,
                "reason": reason,
            },
            reason=prefix + reason,
            simulated=simulated,
            ranking=ranking,
        )

    top = ranking[0]
    curve = _speedup_curve(table, top["config_key"])
    flags: list[str] | None = None
    command: str | None = None
    if launch_line is not None:
        flags, command = launch_line(
            SpecConfig(top["num_steps"], top["topk"], top["num_draft_tokens"])
        )
    best: dict[str, Any] = {
        "num_steps": top["num_steps"],
        "topk": top["topk"],
        "num_draft_tokens": top["num_draft_tokens"],
        "config_key": top["config_key"],
        "tau": top["tau"],
        "speedup": top["speedup"],
        "concurrency": primary,
        "speedup_by_concurrency": {str(c): s for c, s in curve},
        "flags": flags,
        "launch_command": command,
        "simulated": simulated,
    }
    break_even = _break_even(top, curve, primary, threshold, hardware_class)
    return Verdict(
        best=best,
        break_even=break_even,
        reason=prefix + str(break_even["reason"]),
        simulated=simulated,
        ranking=ranking,
    )


def _speedup_curve(table: pd.DataFrame, key: str) -> list[tuple[int, float | None]]:
    rows = table[table["config_key"] == key].sort_values("concurrency")
    return [(int(r.concurrency), finite(r.speedup)) for r in rows.itertuples(index=False)]


def _break_even(
    top: Mapping[str, Any],
    curve: Sequence[tuple[int, float | None]],
    primary: int,
    threshold: float,
    hardware_class: str | None,
) -> dict[str, Any]:
    key = top["config_key"]
    speed: float | None = top["speedup"]
    tau: float | None = top["tau"]
    tau_text = f"tau {tau:.2f}" if tau is not None else "tau unknown"

    if speed is None:
        reason = (
            f"No baseline was measured at concurrency {primary}, so the speedup is unknown; "
            f"{key} has the highest acceptance ({tau_text}), but measure the baseline "
            "before turning speculation on."
        )
        return _be(None, STATUS_UNKNOWN, False, reason)

    if speed <= threshold:
        if hardware_class == HOST_STAGED:
            why = (
                "all-reduce is staged through host memory (no GPU peer-to-peer), so the "
                "draft and verify collectives cost more than the accepted tokens save"
            )
        else:
            why = f"no configuration beats the baseline by more than {threshold - 1:.0%}"
        reason = (
            f"Turn speculation off: the best configuration, {key}, reaches only {speed:.2f}x "
            f"at concurrency {primary} ({tau_text}); {why}."
        )
        return _be(None, STATUS_NEVER_PAYS, False, reason)

    # Pays at the primary concurrency: walk up the measured load until it stops paying.
    higher = [(c, s) for c, s in curve if c >= primary and s is not None]
    prev_c, prev_s = primary, speed
    for c, s in higher:
        if c == primary:
            continue
        assert s is not None
        if s <= threshold:
            point = interpolate_break_even(prev_c, prev_s, c, s)
            reason = (
                f"Use {key}: {speed:.2f}x faster than no speculation at concurrency {primary} "
                f"({tau_text}), but it stops paying above about {format_concurrency(point)} concurrent "
                f"requests ({s:.2f}x at {c}); turn speculation off under heavier load."
            )
            return _be(point, STATUS_CROSSES, True, reason)
        prev_c, prev_s = c, s
    top_c = max([c for c, _ in higher] + [primary])
    if top_c == primary:
        where = f"only concurrency {primary} was measured, so the break-even is unknown"
    else:
        where = (
            f"still faster at every measured concurrency up to {top_c}, so the break-even "
            f"lies above {top_c} (not extrapolated)"
        )
    reason = (
        f"Use {key}: {speed:.2f}x faster than no speculation at concurrency {primary} "
        f"({tau_text}); {where}."
    )
    return _be(None, STATUS_PAYS_EVERYWHERE, True, reason)


def _be(concurrency: float | None, status: str, recommended: bool, reason: str) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "status": status,
        "speculation_recommended": recommended,
        "reason": reason,
    }


__all__ = [
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
