"""What a launch-mode sweep will cost, decided before the first server starts.

The wall-time estimate is printed so a user can stop a sweep they cannot afford (and
printed again once the baseline's real launch time is known). The engine's own automatic
configuration, also measured first, is the engine's to say (EngineAdapter.default_config:
SGLang's by architecture and installed release, none on vLLM).
"""

from __future__ import annotations

from collections.abc import Sequence

from specbench.model import PerformanceModel
from specbench.sweeps.budget import LoadCost, WallTimeEstimate, estimate_wall_time
from specbench.sweeps.options import requests_per_load


def launch_estimate(
    prior: PerformanceModel,
    concurrencies: Sequence[int],
    num_prompts: int,
    max_new_tokens: int,
    trials: int,
    *,
    launch_s: float,
    launch_source: str = "estimate",
    with_baseline: bool = True,
) -> WallTimeEstimate:
    """trials x (launch + measure) plus the baseline, measuring at the prior's
    baseline speed (a speculative server is faster, so this errs long)."""
    loads = []
    for concurrency in concurrencies:
        per_stream = prior.predict(None, concurrency).tokens_per_s / concurrency
        loads.append(
            LoadCost(
                concurrency,
                requests_per_load(num_prompts, concurrency),
                max_new_tokens,
                per_stream,
                warmup_requests=concurrency,
            )
        )
    return estimate_wall_time(
        trials, loads, launch_s=launch_s, launch_source=launch_source, with_baseline=with_baseline
    )


__all__ = ["launch_estimate"]
