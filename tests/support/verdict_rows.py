"""Trial rows shaped like a sweep's, for the verdict's tests (no sweep, no files)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict import Decision, decide
from tests.support.trials import trial_row


def launch_text(config: SpecConfig | None) -> str:
    base = "python -m sglang.launch_server --model-path m --tp-size 4"
    if config is None:
        return base
    return (
        f"{base} --speculative-algorithm EAGLE3 --speculative-num-steps {config.num_steps} "
        f"--speculative-eagle-topk {config.topk} "
        f"--speculative-num-draft-tokens {config.num_draft_tokens}"
    )


def trial_rows(
    speedups: dict[str, dict[int, float]],
    ci: dict[tuple[str, int], tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Rows of each configuration at each load, a baseline at 1, 8 and 32, and the
    interval columns a measurement adds (NaN where ``ci`` gives none)."""
    rows: list[dict[str, Any]] = []
    for n, (key, by_c) in enumerate(speedups.items()):
        steps = SpecConfig.parse(key).num_steps
        for c, s in by_c.items():
            low, high = (ci or {}).get((key, c), (math.nan, math.nan))
            row = trial_row(key, c, s, 1.0 + steps * 0.5, number=n)
            rows.append({**row, "speedup_ci_low": low, "speedup_ci_high": high})
    rows += [trial_row(BASELINE_KEY, c, 1.0, None) for c in (1, 8, 32)]
    return pd.DataFrame(rows)


#: The host-staged shape: pays a little at 1, loses at 8 and 32.
HOST_STAGED = {
    "2-2-3": {1: 1.23, 8: 0.82, 32: 0.85},
    "1-1-2": {1: 1.225, 8: 0.93, 32: 0.94},
    "1-2-2": {1: 1.224, 8: 0.93, 32: 0.94},
    "3-4-8": {1: 0.91, 8: 0.55, 32: 0.55},
}


def decide_rows(
    trials: pd.DataFrame,
    loads: Sequence[int],
    *,
    host_staged: bool = False,
    defaults: Mapping[str, SpecConfig] | None = None,
) -> Decision:
    """The decision of ``trials`` with ``launch_text`` launch lines."""
    return decide(
        trials,
        loads,
        launch_line=lambda config: ([], launch_text(config)),
        plain_launch=launch_text(None),
        defaults=defaults,
        hardware_class="host-staged" if host_staged else None,
    )
