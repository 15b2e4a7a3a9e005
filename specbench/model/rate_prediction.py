"""The model's prediction at a request rate: queueing from the service rate at each batch.

At an offered rate ``lam`` (requests/s) a server in steady state runs a batch ``b`` that
Little's law ties to the time a request spends in it: ``b = lam * E2E(b)``, with
``E2E(b) = (prefill + m * step(b)) / (1 - lam * prefill)``: ``m = (output_len - 1) /
tau`` verify steps per request, ``step(b)`` the model's decode step at batch ``b``, and
every arrival's prefill a step the whole batch waits through (about ``lam * E2E`` of them
in a request's life). The smallest ``b`` that solves it is the operating point: TTFT =
prefill + step(b) (a request waits for the step under way, then is prefilled), TPOT =
(E2E - TTFT) / (output_len - 1). Its capacity is the most
requests/s any batch finishes, ``max_b b / E2E(b)``; above it the queue grows without
bound and the rate is saturated. The same fixed point as the simulator's open loop on a
fixed-step server (tests/harness/test_rate_loads.py computes it by hand).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from specbench.model.performance import PerformanceModel
from specbench.spec_config import SpecConfig, config_key

#: Batches the fixed point is looked for in (beyond any engine's running batch).
MAX_BATCH = 2048


@dataclass(frozen=True)
class RatePrediction:
    """One configuration at one offered rate (times in ms, rates in requests/s)."""

    config_key: str
    rate_per_s: float
    capacity_per_s: float
    saturated: bool
    batch: float | None
    tpot_ms: float | None
    ttft_ms: float | None
    e2e_ms: float | None
    output_tokens_per_s_per_user: float | None


def _steps_s(model: PerformanceModel, config: SpecConfig | None) -> np.ndarray:
    """The decode step at every batch 1..MAX_BATCH, in one vectorised cost call."""
    batches = np.arange(1, MAX_BATCH + 1, dtype=float)
    if config is None:
        return np.asarray(model.cost.baseline_step_s(batches), dtype=float)
    return np.asarray(
        model.cost.spec_step_s(
            np.asarray(config.num_steps),
            np.asarray(config.topk),
            np.asarray(config.num_draft_tokens),
            batches,
        ),
        dtype=float,
    )


def predict_rates(
    model: PerformanceModel,
    config: SpecConfig | None,
    rates: Sequence[float],
    *,
    input_len: int,
    output_len: int,
    domain: str | None = None,
) -> list[RatePrediction]:
    """The operating point of ``config`` (None: no speculation) at every rate."""
    tau = 1.0 if config is None else model.expected_tau(config, domain)
    steps = _steps_s(model, config)
    batches = np.arange(1, MAX_BATCH + 1, dtype=float)
    prefill = model.prefill_s(input_len, 1)
    decode_steps = max(output_len - 1, 0) / tau
    out = []
    for rate in rates:
        # Every arrival's prefill is a step the whole batch waits through: over a
        # request's life about rate * E2E of them, which stretches it by 1 / (1 - rate * p).
        stretch = 1.0 - rate * prefill
        e2e = (prefill + decode_steps * steps) / stretch if stretch > 0 else None
        # The most requests/s any batch finishes at this rate's prefill load, solved for
        # the rate: lam = b / (prefill + m * step(b) + b * prefill).
        capacity = float(np.max(batches / (prefill + decode_steps * steps + batches * prefill)))
        gap = rate * e2e - batches if e2e is not None else None
        fits = np.nonzero(gap <= 0)[0] if gap is not None else np.array([], dtype=int)
        if e2e is None or gap is None or rate >= capacity or not len(fits):
            out.append(RatePrediction(config_key(config), rate, capacity, True, *([None] * 5)))
            continue
        i = int(fits[0])
        # Interpolate between the batch below (not enough) and this one.
        frac = gap[i - 1] / (gap[i - 1] - gap[i]) if i > 0 else 1.0
        lower = i - 1 if i > 0 else 0
        step = float(steps[lower] + frac * (steps[i] - steps[lower]))
        batch = (
            float(batches[lower] + frac * (batches[i] - batches[lower]))
            if i
            else rate * float(e2e[0])
        )
        total = (prefill + decode_steps * step) / stretch
        ttft = prefill + step
        tpot = (total - ttft) / max(output_len - 1, 1)
        out.append(
            RatePrediction(
                config_key(config),
                rate,
                capacity,
                False,
                batch,
                tpot * 1000.0,
                ttft * 1000.0,
                total * 1000.0,
                1.0 / tpot if tpot > 0 else None,
            )
        )
    return out


def rate_payload(
    model: PerformanceModel,
    configs: Sequence[SpecConfig],
    rates: Sequence[float],
    *,
    input_len: int,
    output_len: int,
    domain: str | None = None,
) -> dict[str, Any]:
    """predict's "rates": the baseline and, at each rate, the unsaturated choice with the
    fastest TPOT (the speed each user sees) among no speculation and ``configs``."""
    base = predict_rates(
        model, None, rates, input_len=input_len, output_len=output_len, domain=domain
    )
    per_config = [
        predict_rates(model, c, rates, input_len=input_len, output_len=output_len, domain=domain)
        for c in configs
    ]
    best = []
    for index in range(len(rates)):
        served = [p[index] for p in [base, *per_config] if not p[index].saturated]
        pick = min(served, key=lambda p: p.tpot_ms or float("inf"), default=None)
        best.append(None if pick is None else asdict(pick))
    return {
        "input_len": input_len,
        "output_len": output_len,
        "baseline": [asdict(p) for p in base],
        "best": best,
    }


__all__ = ["MAX_BATCH", "RatePrediction", "predict_rates", "rate_payload"]
