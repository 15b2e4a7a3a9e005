"""``predict``'s answer in the sweep's shape: the model's table put through the same decision.

A prediction is a sweep whose measurements are the performance model's, so it gets the
same decision (specbench.verdict): the engine's limits applied before anything is
predicted (vLLM drafts chains only, so no tree is ever ranked for it), the memory check,
per-load picks with the model's intervals (+-10%: its largest allowed error against the
published EAGLE-3 speedups), ties inside those intervals to the cheaper tree, the
headline and the launch line. Kept apart from the click command so ``predict -h`` stays
fast (pandas loads only when a prediction runs).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import pandas as pd

from specbench.harness.engine import Deployment, EngineAdapter
from specbench.harness.engines import launch_engine_of
from specbench.model import load_hardware, load_target
from specbench.model.engines import load_engine
from specbench.rundir.layout import normalise_trials
from specbench.spec_config import BASELINE_KEY, SpecConfig, valid_configs
from specbench.verdict import Decision, decide
from specbench.verdict.candidates import CI_MODEL, MODEL_MARGIN
from specbench.verdict.defaults import named_defaults
from specbench.verdict.feasibility import Feasibility, with_tp


def engine_of(engine_name: str | None) -> EngineAdapter:
    """The engine whose limits and launch lines a prediction for ``engine_name`` (a
    shipped profile's name, or a TOML's) uses: SGLang's for one no adapter knows."""
    return launch_engine_of(load_engine(engine_name).name)


def runnable_configs(engine: EngineAdapter, configs: Sequence[SpecConfig]) -> list[SpecConfig]:
    """``configs`` (every valid one when empty) that ``engine`` can run: the capability
    filter is applied before predicting, so nothing it refuses is ever ranked."""
    return [c for c in (list(configs) or valid_configs()) if engine.check_config(c) is None]


def model_interval(key: str, concurrency: int, speedup: float) -> tuple[float, float, str]:
    """A predicted speedup's interval: the model's allowed error either side."""
    return speedup * (1.0 - MODEL_MARGIN), speedup * (1.0 + MODEL_MARGIN), CI_MODEL


def prediction_rows(payload: Mapping[str, Any]) -> pd.DataFrame:
    """The payload's predictions as trial rows (a baseline per load, one row per
    configuration and load), what ``decide`` reads from a sweep."""
    rows: list[dict[str, Any]] = [
        {"trial_number": -1, "config_key": BASELINE_KEY, "concurrency": c, "state": "complete"}
        for c in payload["concurrencies"]
    ]
    for number, row in enumerate(payload["rows"]):
        rows.append(
            {
                "trial_number": number,
                "config_key": row["config"],
                "num_steps": row["num_steps"],
                "topk": row["topk"],
                "num_draft_tokens": row["num_draft_tokens"],
                "concurrency": row["concurrency"],
                "tau": row["tau"],
                "speedup": row["speedup"],
                "state": "complete",
                "simulated": True,
            }
        )
    return normalise_trials(rows)


def predicted_decision(
    payload: Mapping[str, Any],
    *,
    target_name: str,
    hardware_name: str,
    engine_name: str | None,
    draft_name: str | None = None,
) -> Decision:
    """The decision of a prediction, made as a sweep's is."""
    engine = engine_of(engine_name)
    target = load_target(target_name, draft_name)
    tp = int(payload["hardware"]["tp"])
    hardware = load_hardware(hardware_name, tp)
    deployment = Deployment.of(target, tp=tp)
    context = int(payload["workload"]["context_tokens"])
    return decide(
        prediction_rows(payload),
        list(payload["concurrencies"]),
        launch_line=partial(engine.launch_line, deployment),
        plain_launch=engine.baseline_launch_line(deployment),
        intervals=model_interval,
        defaults=named_defaults(target, sglang=engine.default_config(target) is not None),
        feasibility=Feasibility(
            engine.check_config, target, hardware, load_engine(engine_name), context
        ),
        rerun=lambda size: with_tp(("specbench", *sys.argv[1:]), size),
        simulated=True,
    )


__all__ = [
    "engine_of",
    "model_interval",
    "predicted_decision",
    "prediction_rows",
    "runnable_configs",
]
