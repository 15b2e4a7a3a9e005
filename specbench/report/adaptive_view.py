"""The report's adaptive speculation section: both engines' configs written from the
run, with their launch lines, and the ramp's answer when the sweep measured one.

The configs are built as ``specbench export`` builds them (the tiers from the measured
loads, each engine's own format and rules), so the report shows what the command would
write; the file path in the launch lines is the default one inside the run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from specbench.errors import SpecbenchError
from specbench.harness.engine import Deployment
from specbench.harness.engines import create, launch_engine_of
from specbench.rundir.ramp import read_ramp
from specbench.verdict.adaptive_tiers import AdaptiveTier, adaptive_tiers


@dataclass(frozen=True)
class EngineExport:
    """One engine's file and launch line."""

    engine: str
    file_name: str
    body: str
    launch: str
    tiers: list[str]


@dataclass(frozen=True)
class RampRow:
    """One candidate over the ramp."""

    label: str
    output_tokens_per_s: float
    speedup: float
    low: float
    high: float
    phases: list[tuple[int, float, float | None]]
    #: The model's chain and speedup per phase ("2-1-3 1.52x"; "off" without drafts).
    predicted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AdaptiveView:
    """The section: the ramp's answer (None without a ramp) and both engines' configs."""

    answer: str | None
    phases: list[int]
    rows: list[RampRow]
    exports: list[EngineExport] = field(default_factory=list)
    tree_costs: list[str] = field(default_factory=list)
    note: str | None = None


def _tier_text(tier: AdaptiveTier) -> str:
    steps = ", ".join(str(s) for s in tier.steps)
    return f"batch >= {tier.batch_size} (measured at {tier.measured_at}): steps {steps}"


def _exports(
    run_dir: Path, tiers: list[AdaptiveTier], deployment: Deployment, engines: tuple[str, ...]
) -> list[EngineExport]:
    out = []
    for name in engines:
        try:
            engine = create(name)
        except SpecbenchError:
            continue  # a run of an engine this installation does not know

        fmt = engine.adaptive
        if fmt is None:
            continue
        try:
            body, launch = fmt.build(engine, deployment, tiers, str(run_dir / fmt.file_name))
        except SpecbenchError:
            continue  # this deployment cannot adapt on that engine (another algorithm)
        out.append(
            EngineExport(
                name,
                fmt.file_name,
                json.dumps(body, indent=2),
                launch,
                [_tier_text(t) for t in tiers],
            )
        )
    return out


def _rows(ramp: dict[str, Any]) -> list[RampRow]:
    rows = []
    for cand in ramp.get("candidates", []):
        low, high = cand["speedup_ci"]
        phases = [
            (p["concurrency"], p["output_tokens_per_s"], p.get("tau")) for p in cand["phases"]
        ]
        predicted = [
            f"{p['config']} {p['speedup']:.2f}x" if p.get("config") else "off"
            for p in cand.get("predicted", [])
        ]
        rows.append(
            RampRow(
                cand["label"],
                cand["output_tokens_per_s"],
                cand["speedup"],
                low,
                high,
                phases,
                predicted,
            )
        )
    return rows


def build_adaptive_view(
    run_dir: Path,
    trials: pd.DataFrame,
    concurrencies: list[int],
    deployment: Deployment,
    *,
    engine: str,
) -> AdaptiveView | None:
    """The section, or None when the run measured no chain and no ramp. ``engine`` is the
    run's: its tiers were measured there, so the formats shown are the ones its adapter
    can be written for (``EngineAdapter.adaptive_for``: its own, or both for the sim)."""
    ramp = read_ramp(run_dir)
    try:
        tiers = adaptive_tiers(trials, concurrencies)
    except SpecbenchError:
        tiers = []
    if not tiers and ramp is None:
        return None
    speculating = any(t.speculates for t in tiers)
    shown = launch_engine_of(engine).adaptive_for or (engine,)
    exports = _exports(run_dir, tiers, deployment, shown) if speculating else []
    costs = [
        f"at {t.measured_at}: the best chain {t.best_chain.key} is {100 * cost:.1f}% below "
        f"the best tree {t.best_any.key}"
        for t in tiers
        if (cost := t.tree_cost_fraction) is not None and t.best_chain and t.best_any
    ]
    note = None if speculating or not tiers else "no chain beat no speculation at any load"
    return AdaptiveView(
        answer=None if ramp is None else str(ramp.get("answer")),
        phases=[] if ramp is None else list(ramp.get("phases", [])),
        rows=[] if ramp is None else _rows(ramp),
        exports=exports,
        tree_costs=costs,
        note=note,
    )


__all__ = ["AdaptiveView", "EngineExport", "RampRow", "build_adaptive_view"]
