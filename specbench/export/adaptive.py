"""``specbench export``: a run's per-load results as an engine's adaptive speculation.

The tiers come from the measured loads (``specbench.verdict.adaptive_tiers``), the file
and the launch line from the engine's own format (``EngineAdapter.adaptive``), and the
file is put through the engine's loader rules before it is written, so what is written
is what the engine will run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, SpecbenchError
from specbench.harness.engine import Deployment, EngineAdapter
from specbench.harness.engines import create
from specbench.harness.served_deployment import printed_deployment
from specbench.outpaths import check_output_file
from specbench.rundir.layout import Manifest, RunDirectory
from specbench.schema import write_text_atomic
from specbench.verdict.adaptive_tiers import AdaptiveTier, adaptive_tiers
from specbench.verdict.candidates import KIND_NO_FIT
from specbench.verdict.decision import Decision


@dataclass(frozen=True)
class AdaptiveExport:
    """What was written: the engine's file (None when no load speculated) and the line
    that serves it."""

    engine: str
    #: The engine picks among each tier's steps at run time (else it runs the pick).
    chooses_at_run_time: bool
    tiers: tuple[AdaptiveTier, ...]
    path: Path | None
    body: dict[str, Any] | None
    launch: str
    simulated: bool

    def summary_lines(self) -> list[str]:
        """One line per tier, what it costs against the best tree where one won, then
        where the file went."""
        mark = "SIMULATED: " if self.simulated else ""
        if self.body is None:
            return [
                f"{mark}speculation beat no speculation at no measured load: serve without it",
                self.launch,
            ]
        lines = [f"{mark}{self.engine} adaptive speculation from the measured loads:"]
        for tier in self.tiers:
            lines.append("  " + tier_sentence(tier, self.chooses_at_run_time))
        lines.append(f"written to {self.path}; launch with:")
        lines.append(self.launch)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "simulated": self.simulated,
            "path": None if self.path is None else str(self.path),
            "config": self.body,
            "launch": self.launch,
            "tiers": [t.to_json() for t in self.tiers],
        }


def tier_sentence(tier: AdaptiveTier, among_steps: bool = True) -> str:
    """``batch >= 8 (measured at 8): steps 2, 3; best chain 2-1-3 1.27x [1.21-1.34]``
    (``k 2`` instead of the steps when the engine runs one chain length per tier)."""
    where = f"batch >= {tier.batch_size} (measured at {tier.measured_at})"
    chain = tier.best_chain
    if not tier.speculates:
        if chain is None:
            return f"{where}: no speculation (no chain measured here)"
        return (
            f"{where}: no speculation (best chain {chain.key} {chain.speedup:.2f}x "
            f"[{chain.ci[0]:.2f}-{chain.ci[1]:.2f}] does not beat it)"
        )
    steps = ", ".join(str(s) for s in tier.steps)
    text = f"{where}: steps {steps}" if among_steps else f"{where}: k {tier.pick}"
    if chain is not None:
        text += (
            f"; best chain {chain.key} {chain.speedup:.2f}x [{chain.ci[0]:.2f}-{chain.ci[1]:.2f}]"
        )
    cost = tier.tree_cost_fraction
    if cost is not None and tier.best_any is not None:
        text += (
            f", {100 * cost:.1f}% below the best tree {tier.best_any.key} "
            f"{tier.best_any.speedup:.2f}x (adaptive speculation runs chains only)"
        )
    return text


def deployment_of(manifest: Manifest) -> Deployment:
    """The server the run measured, from its manifest: the preset where this
    installation has it, the model paths and algorithm the run recorded either way, and
    the batch limit of its highest load."""
    from specbench.model import load_target

    tp = manifest.hardware.get("tp")
    served_tp = tp if isinstance(tp, int) and not isinstance(tp, bool) else None
    try:
        target = load_target(manifest.target)
    except SpecbenchError:
        target = None
    deployment = Deployment.of(
        target,
        tp=served_tp,
        model_path=manifest.workload.target_model or None,
        draft_model_path=manifest.workload.draft_model or None,
        max_batch=max(manifest.concurrencies),
    )
    algorithm = manifest.workload.algorithm
    return replace(deployment, algorithm=algorithm) if algorithm else deployment


def adaptive_engine(name: str) -> EngineAdapter:
    """The engine ``--engine`` names, if it has an adaptive format."""
    engine = create(name)
    if engine.adaptive is None:
        raise BadInputError(f"engine {name!r} has no speculation that follows the batch size")
    return engine


def _refuse_a_run_that_does_not_fit(run: RunDirectory) -> None:
    """The run's decision says not even the server without speculation fits in memory:
    every launch line it could write is one that cannot run, so none is written."""
    if not run.results_path.exists():
        return
    decision = Decision.from_results(run.read_results())
    if decision is not None and decision.kind == KIND_NO_FIT:
        raise BadInputError(
            f"{run.path}: nothing to export, the run's deployment does not fit: {decision.reason}"
        )


def export_adaptive(
    run_dir: Path, engine_name: str, out: Path | None = None, *, tiers: Sequence[AdaptiveTier] = ()
) -> AdaptiveExport:
    """Write ``engine_name``'s adaptive config for the run at ``run_dir`` (default file:
    inside the run directory) and return what was written. ``tiers`` replaces the
    measured ones (tests, and a program that edits them)."""
    engine = adaptive_engine(engine_name)
    fmt = engine.adaptive
    assert fmt is not None  # adaptive_engine refuses an engine without one
    run = RunDirectory(run_dir)
    if not run.exists():
        raise BadInputError(f"{run.path}: not a run directory (no manifest.json)")
    manifest = run.read_manifest()
    _refuse_a_run_that_does_not_fit(run)
    chosen = tuple(tiers) or tuple(adaptive_tiers(run.read_trials(), manifest.concurrencies))
    deployment = deployment_of(manifest)
    if manifest.backend == engine.name:
        # The server the run measured as the run recorded it (an attached server's own
        # model, parallelism and limits); another engine's line starts from the preset.
        deployment = printed_deployment(manifest.extra, deployment)
    if not any(t.speculates for t in chosen):
        launch = engine.baseline_launch_line(deployment)
        return AdaptiveExport(
            engine.name, fmt.chooses_at_run_time, chosen, None, None, launch, manifest.simulated
        )
    path = Path(out) if out is not None else run.path / fmt.file_name
    check_output_file(path, option="--out" if out is not None else "RUN_DIR")
    body, launch = fmt.build(engine, deployment, chosen, str(path))
    fmt.check(body, str(path))
    write_text_atomic(path, json.dumps(body, indent=2) + "\n")
    return AdaptiveExport(
        engine.name, fmt.chooses_at_run_time, chosen, path, body, launch, manifest.simulated
    )


def check_adaptive_file(path: Path, engine_name: str) -> dict[str, Any]:
    """Read an adaptive config a user wrote and apply ``engine_name``'s loader rules:
    one line naming the file and the rule when the engine would refuse it."""
    fmt = adaptive_engine(engine_name).adaptive
    assert fmt is not None
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    fmt.check(body, str(path))
    assert isinstance(body, dict)  # check refuses anything but an object
    return body


__all__ = ["AdaptiveExport", "adaptive_engine", "check_adaptive_file", "export_adaptive"]
