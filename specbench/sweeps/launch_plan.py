"""What a launch-mode sweep will cost and which automatic configuration SGLang would pick.

Both are decided before the first server starts: the wall-time estimate is printed so a
user can stop a sweep they cannot afford (and printed again once the baseline's real
launch time is known), and SGLang's automatic configuration is one of the first
configurations measured, so it has to be the one the installed SGLang would choose.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

from specbench.harness.sglang_server_state import auto_config_for
from specbench.model import PerformanceModel, TargetPreset
from specbench.spec_config import SpecConfig
from specbench.sweeps.budget import LoadCost, WallTimeEstimate, estimate_wall_time
from specbench.sweeps.options import requests_per_load


def installed_sglang_version() -> str | None:
    """The SGLang release installed here, None when there is none."""
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        return None


def sglang_auto_config(target: TargetPreset, version: str | None = None) -> SpecConfig:
    """SGLang's automatic (num_steps, topk, num_draft_tokens) for ``target``.

    ``version`` None: the installed release, else the newest known. The sweep launches
    it with explicit flags, and the launched-config check reads back what the server
    resolved, so a wrong guess is measured under its own numbers, never mislabelled.
    """
    if target.architecture is None:
        return target.auto_config
    return auto_config_for(target.architecture, version or installed_sglang_version())


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


__all__ = ["installed_sglang_version", "launch_estimate", "sglang_auto_config"]
