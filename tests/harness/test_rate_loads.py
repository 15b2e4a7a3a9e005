"""Request-rate loads through the simulator's scheduler on a fixed-step model.

The model's step times are known (a decode step of ``a + c * batch`` seconds, a fixed
prefill, a fixed number of tokens per verify step), so TTFT, TPOT, capacity and the
highest rate within a TPOT objective can be computed by hand and compared with what the
open-loop load measures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from specbench.harness.loads import ConstantArrival, PoissonArrival, RateLoad
from specbench.harness.prompts import Prompt
from specbench.harness.rate_metrics import RateSummary, summarize_rate
from specbench.harness.rate_search import slo_rate
from specbench.harness.sim_engine import SimEngine
from specbench.harness.sim_open_loop import run_open_loop_sim
from specbench.harness.slo import parse_objectives
from specbench.spec_config import SpecConfig

CONFIG = SpecConfig(2, 1, 3)


class FixedStepModel:
    """Decode steps of ``base_s + per_request_s * batch``; prefill ``prefill_s`` whatever
    its batch; every verify step accepts ``tau`` tokens."""

    def __init__(self, base_s: float, per_request_s: float, prefill_s: float, tau: int = 1) -> None:
        self.base_s = base_s
        self.per_request_s = per_request_s
        self.prefill = prefill_s
        self.tau = tau

    def decode_step_s(self, config: SpecConfig | None, batch: int) -> float:
        return self.base_s + self.per_request_s * batch

    def prefill_s(self, prompt_tokens: int, batch: int = 1) -> float:
        return self.prefill

    def sample_accept_lengths(
        self, config: SpecConfig, domain: str, n: int, rng: np.random.Generator
    ) -> npt.NDArray[Any]:
        return np.full(n, self.tau)


PROMPTS = [Prompt(f"p{i}", "chat", "hello " * 20) for i in range(8)]


def _measure(
    model: FixedStepModel,
    load: RateLoad,
    *,
    tokens: int,
    count: int,
    config: SpecConfig | None = None,
    slo: str = "",
) -> RateSummary:
    engine = SimEngine(model, config, seed=0)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(count)]
    run = run_open_loop_sim(
        engine, prompts, load, max_new_tokens=tokens, timeout_s=3600.0, id_prefix="t"
    )
    return summarize_rate(run, load, parse_objectives(slo) if slo else ())


@pytest.mark.parametrize("arrival", [ConstantArrival(), PoissonArrival()])
def test_ttft_and_tpot_well_under_capacity_are_the_step_times(arrival: Any) -> None:
    # 50 ms prefill, 10 ms per decode step, 33 tokens: 370 ms per request alone. At
    # 0.5 req/s requests rarely overlap, so the medians are the bare step times.
    model = FixedStepModel(0.010, 0.0, 0.050)
    summary = _measure(model, RateLoad(0.5, arrival, seed=3), tokens=33, count=60)
    assert summary.completed == 60
    assert summary.ttft_ms_p50 == pytest.approx(50.0, rel=0.05)
    assert summary.tpot_ms_p50 == pytest.approx(10.0, rel=0.05)
    assert summary.unfinished_at_window_end <= 1
    assert not summary.flags


def test_above_capacity_the_achieved_rate_is_the_capacity() -> None:
    # At most 8 in flight, steps of 10 ms and a prefill that adds no time (a costed
    # prefill would stall the whole batch once per admission, and how often depends on
    # how admissions bunch). A request joins the step under way when it is admitted (its
    # first token comes at that step's end), then needs 32 more: it holds its slot for
    # 33 steps, so the server finishes 8 requests every 330 ms, whatever is offered.
    model = FixedStepModel(0.010, 0.0, 0.0)
    load = RateLoad(60.0, ConstantArrival(), max_concurrency=8)
    summary = _measure(model, load, tokens=33, count=1500)
    capacity = 8 / (33 * 0.010)
    assert summary.achieved_rate_per_s == pytest.approx(capacity, rel=0.05)
    assert summary.unfinished_at_window_end > 0
    assert any(flag.startswith("served ") for flag in summary.flags)


def _analytic_slo_rate(model: FixedStepModel, tokens: int, tpot_ms: float) -> float:
    """Little's law with no prefill: steps per request m = (tokens - 1) / tau, mean batch
    b = rate * m * step(b), TPOT = step(b) / tau = a / (tau * (1 - rate * m * c)); solved
    for TPOT = the objective."""
    steps = (tokens - 1) / model.tau
    return (1.0 - model.base_s / (model.tau * tpot_ms / 1000.0)) / (steps * model.per_request_s)


@pytest.mark.parametrize(
    ("model", "config"),
    [
        (FixedStepModel(0.020, 0.0010, 0.0), None),
        (FixedStepModel(0.026, 0.0015, 0.0, tau=3), CONFIG),
    ],
    ids=["baseline", "speculative"],
)
def test_slo_rate_matches_the_rate_computed_from_tau_and_step_times(
    model: FixedStepModel, config: SpecConfig | None
) -> None:
    tokens = 64

    def measure(load: RateLoad) -> RateSummary:
        return _measure(model, load, tokens=tokens, count=300, config=config, slo="tpot_p99_ms=30")

    expected = _analytic_slo_rate(model, tokens, 30.0)
    found = slo_rate(
        measure,
        lambda rate: RateLoad(rate, ConstantArrival()),
        parse_objectives("tpot_p99_ms=30"),
        3.3 * expected,
    )
    assert not found.at_top
    assert found.rate_per_s == pytest.approx(expected, rel=0.10)


def test_the_same_load_gives_the_same_send_times_to_every_configuration() -> None:
    load = RateLoad(4.0, PoissonArrival(), seed=11)
    base = _measure(FixedStepModel(0.01, 0.0, 0.01), load, tokens=8, count=40)
    spec = _measure(FixedStepModel(0.01, 0.0, 0.01, tau=2), load, tokens=8, count=40, config=CONFIG)
    assert load.send_offsets_s(40) == RateLoad(4.0, PoissonArrival(), seed=11).send_offsets_s(40)
    assert load.send_offsets_s(40) != RateLoad(4.0, PoissonArrival(), seed=12).send_offsets_s(40)
    assert base.requests == spec.requests == 40
    assert spec.tpot_ms_p50 is not None and base.tpot_ms_p50 is not None
    assert spec.tpot_ms_p50 < base.tpot_ms_p50


def test_goodput_counts_requests_within_every_objective() -> None:
    model = FixedStepModel(0.010, 0.0, 0.050)
    load = RateLoad(0.5, ConstantArrival())
    within = _measure(model, load, tokens=33, count=20, slo="ttft_p99_ms=60,tpot_p99_ms=11")
    outside = _measure(model, load, tokens=33, count=20, slo="ttft_p99_ms=40")
    assert within.slo_met is True and outside.slo_met is False
    assert within.goodput_per_s == pytest.approx(within.completed_per_s)
    assert outside.goodput_per_s == 0.0
