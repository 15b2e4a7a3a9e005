"""Shared pieces of the sweep tests: small fast options and a backend that misbehaves."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from specbench.errors import ServerError
from specbench.harness.backend import Session
from specbench.harness.sim_backend import SimBackend
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.spec_config import SpecConfig, config_key
from specbench.sweeps.options import SweepOptions

#: Small enough that a whole sweep takes about a second.
FAST: dict[str, Any] = {
    "num_prompts": 4,
    "max_new_tokens": 24,
    "concurrencies": (1, 4),
    "report": False,
}


def fast_options(out: Path, **overrides: Any) -> SweepOptions:
    values = {**FAST, "out": out, **overrides}
    return SweepOptions(**values)


def truth_model(seed: int = 0) -> PerformanceModel:
    return PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), seed=seed)


class ScriptedBackend(SimBackend):
    """The simulator, except for configurations told to fail or to be interrupted.

    ``opened`` lists every configuration key a session was opened for, so tests can
    check that nothing is measured twice.
    """

    def __init__(
        self,
        model: PerformanceModel,
        *,
        fail: Sequence[str] = (),
        interrupt: Sequence[str] = (),
        interrupt_after: int | None = None,
    ) -> None:
        super().__init__(model, seed=0)
        self.fail = set(fail)
        self.interrupt = set(interrupt)
        self.interrupt_after = interrupt_after
        self.opened: list[str] = []

    def session(
        self, config: SpecConfig | None, *, log_path: Path
    ) -> contextlib.AbstractContextManager[Session]:
        return self._scripted(config, log_path)

    @contextlib.contextmanager
    def _scripted(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        key = config_key(config)
        self.opened.append(key)
        speculative = [k for k in self.opened if k != "baseline"]
        if key in self.fail:
            raise ServerError(
                f"server for {key} exited with code 1", "CUDA error: scripted failure"
            )
        if key in self.interrupt or (
            self.interrupt_after is not None and len(speculative) > self.interrupt_after
        ):
            raise KeyboardInterrupt
        with super().session(config, log_path=log_path) as session:
            yield session


def run_cli(
    args: Sequence[str], cwd: Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("SPECBENCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "specbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
