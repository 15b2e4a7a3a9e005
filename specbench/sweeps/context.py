"""One sweep as the steps after ``set_up`` see it, and the lock they write under.

This module holds only the shape of a set-up sweep, so that the later steps (measure,
baseline, resume, results) depend on it and not on ``sweeps.setup``, which loads
targets, opens studies and enqueues; they never need to set a sweep up themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from specbench.harness.backend import Backend
from specbench.harness.engine import EngineAdapter
from specbench.harness.prompts import Prompt
from specbench.model import PerformanceModel, TargetPreset
from specbench.rundir.layout import Manifest, RunDirectory
from specbench.rundir.records import write_records
from specbench.sweeps.options import SweepOptions
from specbench.sweeps.progress import SweepProgress
from specbench.sweeps.rate_plan import RatePlan
from specbench.sweeps.search import ConfigSearch
from specbench.sweeps.space import SearchSpace
from specbench.sweeps.strategy import SearchStrategy


@dataclass
class SweepContext:
    """One sweep as the steps after ``set_up`` see it."""

    options: SweepOptions
    target: TargetPreset
    prompts: list[Prompt]
    run_dir: RunDirectory
    manifest: Manifest
    #: The engine measured (sglang, vllm, sim or one a program registered), resolved once.
    engine: EngineAdapter
    backend: Backend
    baseline_backend: Backend | None
    prior: PerformanceModel
    simulated: bool
    worker: str
    progress: SweepProgress
    strategy: SearchStrategy
    space: SearchSpace
    study: optuna.Study
    search: ConfigSearch
    #: Configurations this study measures in all (all workers together).
    total_target: int
    notes: list[str] = field(default_factory=list)
    #: The request-rate loads and objectives; None when only concurrencies are measured.
    rates: RatePlan | None = None

    @property
    def concurrencies(self) -> tuple[int, ...]:
        return tuple(self.options.concurrencies)

    @property
    def primary(self) -> int:
        return self.concurrencies[0]

    @property
    def hardware(self) -> dict[str, Any]:
        return self.manifest.hardware

    @property
    def study_name(self) -> str:
        return self.manifest.study_name


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on requests.jsonl (``path``), so workers sharing one run
    directory append whole lines and write results.json one at a time.

    The lock is taken on the requests file itself rather than on a lock file, which
    would be left behind in every run directory. A file created here gets its schema
    header at once, so readers never meet a requests file without one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            if os.fstat(fh.fileno()).st_size == 0:
                write_records(path, [])
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
