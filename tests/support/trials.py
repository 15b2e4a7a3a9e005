"""Trial rows for tests, built like the sweep builds them (rundir.trials.TrialRow)."""

from __future__ import annotations

from typing import Any

from specbench.rundir.trials import TrialRow
from specbench.spec_config import BASELINE_KEY, SpecConfig


def trial_row(
    key: str,
    concurrency: int,
    speedup: float | None,
    tau: float | None = 2.5,
    *,
    number: int = 0,
    state: str = "complete",
    **fields: Any,
) -> dict[str, Any]:
    """One trials.csv row of configuration ``key`` ("3-4-8" or "baseline")."""
    if key == BASELINE_KEY:
        config, number = None, -1
    else:
        config = SpecConfig.parse(key)  # the tests' shorthand: a config written as text
    row = TrialRow.for_config(
        number, config, concurrency, state=state, tau=tau, speedup=speedup, **fields
    )
    return row.as_dict()
