"""Fit an engine's overheads to measured decode step times at several concurrencies.

The model prices a decode step as the roofline of its forwards plus engine overheads that
enter linearly (per iteration, per request, per draft forward, per drafted and verified
token; engines.py). So with the roofline held, measured step times are a linear function
of those constants, and non-negative least squares recovers the ones the measurements can
tell apart: per-request constants need at least two concurrencies, speculative ones need
speculative steps. The result is an engine TOML that `predict --engine FILE` reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from specbench.errors import BadInputError
from specbench.model.cost import CostModel
from specbench.model.engines import EngineProfile
from specbench.model.performance import PerformanceModel
from specbench.schema import write_text_atomic
from specbench.spec_config import SpecConfig

_BASE = ("scheduler_us", "request_us")
_SPEC = ("spec_iteration_us", "spec_token_us", "draft_step_us", "draft_token_us")
_PER_REQUEST = ("request_us", "spec_token_us", "draft_token_us")


@dataclass(frozen=True)
class StepMeasurement:
    """One measured decode step time: a configuration (None: no speculation) at a batch."""

    config: SpecConfig | None
    concurrency: int
    step_ms: float


@dataclass(frozen=True)
class EngineFit:
    engine: EngineProfile
    base: str  # the engine profile the fit started from
    fitted: tuple[str, ...]  # the constants the data could determine
    max_abs_relative_error: float


def _with(
    engine: EngineProfile, values: Mapping[str, float], name: str | None = None
) -> EngineProfile:
    fields = {**asdict(engine), **values}
    if name is not None:
        fields["name"] = name
    return EngineProfile(**fields)


def _step_ms(model: PerformanceModel, engine: EngineProfile, m: StepMeasurement) -> float:
    cost = CostModel(
        model.target,
        model.hardware,
        model.cost.scales,
        engine=engine,
        context_tokens=model.cost.context_tokens,
        draft_tp=model.cost.draft_tp,
    )
    b = np.asarray(float(m.concurrency))
    if m.config is None:
        return float(cost.baseline_step_s(b)) * 1e3
    c = m.config
    step = cost.spec_step_s(
        np.asarray(c.num_steps), np.asarray(c.topk), np.asarray(c.num_draft_tokens), b
    )
    return float(step) * 1e3


def fit_engine_overheads(
    model: PerformanceModel, measurements: Sequence[StepMeasurement], *, name: str = "fitted"
) -> EngineFit:
    """The model's engine profile with the identifiable overheads refitted to the data."""
    if not measurements:
        raise BadInputError("no step times to fit")
    if any(m.step_ms <= 0 or m.concurrency < 1 for m in measurements):
        raise BadInputError("step times must be > 0 and concurrencies >= 1")
    params = list(_BASE)
    if any(m.config is not None for m in measurements):
        params += _SPEC
    if len({m.concurrency for m in measurements}) < 2:
        params = [p for p in params if p not in _PER_REQUEST]
    zero = _with(model.engine, dict.fromkeys(params, 0.0))
    floor = np.array([_step_ms(model, zero, m) for m in measurements])
    columns = []
    for p in params:  # each constant's contribution per microsecond
        unit = _with(zero, {p: 1.0})
        columns.append(np.array([_step_ms(model, unit, m) for m in measurements]) - floor)
    a = np.column_stack(columns)
    y = np.array([m.step_ms for m in measurements]) - floor
    weights = 1.0 / np.array([m.step_ms for m in measurements])  # relative error
    values, _ = nnls(a * weights[:, None], y * weights)
    engine = _with(zero, {p: float(v) for p, v in zip(params, values, strict=True)}, name=name)
    pred = np.array([_step_ms(model, engine, m) for m in measurements])
    err = float(np.max(np.abs(pred / np.array([m.step_ms for m in measurements]) - 1.0)))
    base = model.engine
    engine = EngineProfile(
        **{
            **asdict(engine),
            "description": f"the {base.name} profile with overheads refitted to measured step times",
            "sources": (
                *base.sources,
                f"specbench calibration: fitted {', '.join(params)} to {len(measurements)} "
                f"measured step times; max relative error {err:.3%}",
            ),
        }
    )
    return EngineFit(engine, base.name, tuple(params), err)


def write_engine_profile(path: Path, fit: EngineFit) -> None:
    """An engine TOML (flat keys, as data/engines/*.toml) that `predict --engine` reads."""
    e = fit.engine
    lines = [
        f"name = {_q(e.name)}",
        f"description = {_q(e.description)}",
        "sources = [",
        *[f"  {_q(s)}," for s in e.sources],
        "]",
    ]
    for field in (
        "scheduler_us",
        "request_us",
        "spec_iteration_us",
        "spec_token_us",
        "spec_request_us",
        "spec_layer_us",
        "draft_step_us",
        "draft_token_us",
        "tree_attention_efficiency",
        "memory_fraction",
    ):
        lines.append(f"{field} = {float(getattr(e, field))!r}")
    write_text_atomic(path, "\n".join(lines) + "\n")


def _q(text: str) -> str:
    """A TOML basic string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
