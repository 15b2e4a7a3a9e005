"""specbench from Python: measure, read back and predict, in three functions.

``sweep`` runs what ``specbench sweep`` runs and returns its :class:`Results`;
``open_run`` reads the same object back from any run directory (one written by the CLI,
by this API or by another machine); ``predict`` returns the performance model's table
without measuring anything. The run directory stays the one output: a ``Results`` is a
view of its files, so what a program sees is what the report, the gate and the CLI read.

Imported lazily by ``import specbench`` (``specbench.sweep`` and friends load this
module on first use), so the CLI's start-up does not pay for pandas and the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from specbench.errors import BadInputError
from specbench.rundir.layout import Manifest, RunDirectory
from specbench.spec_config import SpecConfig

if TYPE_CHECKING:
    from specbench.harness.engine import EngineAdapter
    from specbench.sweeps.progress import SweepProgress

#: What ``sweep`` measures and ``predict`` predicts when no target is named.
DEFAULT_TARGET = "minimax-m2.7"
#: The hardware ``predict`` models when none is named (``specbench predict``'s default).
DEFAULT_HARDWARE = "h200-nvlink"


@dataclass(frozen=True)
class Results:
    """One run directory, read: its manifest, its trials and its verdict.

    ``trials`` has one row per (configuration, concurrency), the baseline included, with
    the columns of trials.csv; ``summary`` is results.json as written (the verdict, the
    recommendations, the study). Build it with :func:`open_run` or :func:`sweep`.
    """

    run_dir: Path
    manifest: Manifest
    trials: pd.DataFrame
    summary: Mapping[str, Any]

    @property
    def verdict(self) -> dict[str, Any]:
        """What to do: ``kind`` (speculate, or not), the configuration, the launch line,
        the loads it pays at and the one-sentence ``reason``."""
        verdict: dict[str, Any] = dict(self.summary.get("verdict") or {})
        return verdict

    @property
    def best(self) -> dict[str, Any] | None:
        """The best measured configuration at the primary concurrency (None: none
        completed), with its flags and launch command."""
        best = self.summary.get("best")
        return dict(best) if isinstance(best, Mapping) else None

    @property
    def recommendations(self) -> list[dict[str, Any]]:
        """The configuration to launch at each measured concurrency."""
        return [dict(r) for r in self.summary.get("recommendations") or []]

    @property
    def simulated(self) -> bool:
        """True when every number came from the performance model (sim, serve-sim)."""
        return bool(self.manifest.simulated)

    @property
    def backend(self) -> str:
        """The engine measured, by the name the manifest stores."""
        return self.manifest.backend

    @property
    def report_path(self) -> Path | None:
        """report.html, when it was rendered."""
        path = RunDirectory(self.run_dir).report_path
        return path if path.is_file() else None


@dataclass(frozen=True)
class ModelTable:
    """The performance model's prediction for every configuration (all SIMULATED).

    ``rows``: one row per (configuration, concurrency) with tau, speedup and tokens/s;
    ``best``: the best configuration per concurrency; ``break_even``: the concurrency
    above which each interesting configuration stops paying (None: see
    ``payload["break_even_status"]``); ``payload``: ``specbench predict --json``.
    """

    rows: pd.DataFrame
    best: pd.DataFrame
    break_even: dict[str, float | None]
    payload: Mapping[str, Any]


def open_run(path: str | Path) -> Results:
    """The results of the run directory at ``path`` (FileFormatError: not one)."""
    run = RunDirectory(Path(path))
    summary = run.read_results()
    return Results(
        run_dir=run.path, manifest=run.read_manifest(), trials=run.read_trials(), summary=summary
    )


def sweep(
    target: str = DEFAULT_TARGET,
    *,
    backend: str | EngineAdapter = "auto",
    out: str | Path | None = None,
    configs: Sequence[SpecConfig | str] = (),
    concurrencies: Sequence[int] | None = None,
    report: bool = False,
    progress: SweepProgress | None = None,
    **options: Any,
) -> Results:
    """Run (or resume) a sweep of ``target`` and return its results.

    ``backend`` is ``--backend``: auto, an engine's name (sim, sglang, vllm, or one a
    program registered in ``specbench.harness.engines``) or an engine object.
    ``configs`` may be SpecConfig values or ``"3,4,8"`` strings (they imply
    ``strategy="fixed"`` unless another strategy is given). Every other keyword is a
    field of ``specbench.sweeps.options.SweepOptions`` (``hardware``, ``strategy``,
    ``trials``, ``num_prompts``, ``max_new_tokens``, ``seed``...), checked as the CLI
    checks its flags: bad input raises BadInputError with the CLI's one-line message.
    ``report`` renders report.html too; ``progress`` receives the sweep's progress
    (default: silent). An engine object not registered runs and writes results.json
    with its own launch lines, but the report finds an engine by the manifest's name:
    register it (``specbench.harness.engines.register``) for the report to print them.
    """
    from specbench.sweeps.options import SweepOptions
    from specbench.sweeps.runner import run_sweep

    parsed = tuple(c if isinstance(c, SpecConfig) else SpecConfig.parse(c) for c in configs)
    if parsed:
        options.setdefault("strategy", "fixed")
    if concurrencies is not None:
        options["concurrencies"] = tuple(concurrencies)
    sweep_options = SweepOptions(
        target=target,
        backend=backend,
        out=None if out is None else Path(out),
        configs=parsed,
        report=report,
        **options,
    )
    render = None
    if report:
        from specbench.report.html import render_report

        render = render_report
    outcome = run_sweep(sweep_options, progress, render_report=render)
    return open_run(outcome.run_dir.path)


def predict(
    target: str = DEFAULT_TARGET,
    *,
    hardware: str = DEFAULT_HARDWARE,
    concurrencies: Sequence[int] = (1, 8, 32, 128),
    tp: int | None = None,
    configs: Sequence[SpecConfig | str] = (),
    domain: str | None = None,
    seed: int = 0,
    engine: str | None = None,
    input_len: int | None = None,
    output_len: int | None = None,
    temperature: float = 0.0,
    draft_tp: int | None = None,
    draft_profile: str | None = None,
    draft: str | None = None,
) -> ModelTable:
    """What the model predicts for ``target`` on ``hardware``: ``specbench predict``.

    The arguments are the CLI's flags (``domain`` None: the mix of domains; ``engine``
    None: SGLang's engine profile); nothing is measured, every number is SIMULATED.
    """
    from specbench.model.predict import predict_named
    from specbench.model.workload import Workload

    if not concurrencies or any(c < 1 for c in concurrencies):
        raise BadInputError(f"concurrencies must be >= 1 (got {list(concurrencies)})")
    payload = predict_named(
        target,
        hardware,
        sorted(set(concurrencies)),
        tp=tp,
        configs=[c if isinstance(c, SpecConfig) else SpecConfig.parse(c) for c in configs],
        domain=domain,
        seed=seed,
        engine_name=engine,
        workload=Workload(input_len, output_len, temperature),
        draft_tp=draft_tp,
        draft_profile_name=draft_profile,
        draft_name=draft,
    )
    best = [
        {k: v for k, v in row.items() if not isinstance(v, (dict, list))} for row in payload["best"]
    ]
    return ModelTable(
        rows=pd.DataFrame(payload["rows"]),
        best=pd.DataFrame(best),
        break_even=dict(payload["break_even"]),
        payload=payload,
    )


__all__ = ["ModelTable", "Results", "open_run", "predict", "sweep"]
