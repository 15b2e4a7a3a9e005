"""Trial rows shaped like a sweep's, for the verdict's tests (no sweep, no files)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from specbench.spec_config import BASELINE_KEY, SpecConfig


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
    rows: list[dict[str, Any]] = []
    for n, (key, by_c) in enumerate(speedups.items()):
        steps, topk, ndt = (int(x) for x in key.split("-"))
        for c, s in by_c.items():
            low, high = (ci or {}).get((key, c), (math.nan, math.nan))
            rows.append(
                {
                    "trial_number": n,
                    "config_key": key,
                    "num_steps": steps,
                    "topk": topk,
                    "num_draft_tokens": ndt,
                    "concurrency": c,
                    "state": "complete",
                    "tau": 1.0 + steps * 0.5,
                    "speedup": s,
                    "speedup_ci_low": low,
                    "speedup_ci_high": high,
                }
            )
    for c in (1, 8, 32):
        rows.append(
            {
                "trial_number": -1,
                "config_key": BASELINE_KEY,
                "num_steps": None,
                "topk": None,
                "num_draft_tokens": None,
                "concurrency": c,
                "state": "complete",
                "speedup": 1.0,
            }
        )
    return pd.DataFrame(rows)


#: The host-staged shape: pays a little at 1, loses at 8 and 32.
HOST_STAGED = {
    "2-2-3": {1: 1.23, 8: 0.82, 32: 0.85},
    "1-1-2": {1: 1.225, 8: 0.93, 32: 0.94},
    "1-2-2": {1: 1.224, 8: 0.93, 32: 0.94},
    "3-4-8": {1: 0.91, 8: 0.55, 32: 0.55},
}
