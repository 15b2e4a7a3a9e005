"""Adaptive speculation at run time (specbench.harness.adaptive_steps) and in SimEngine."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from specbench.errors import BadInputError
from specbench.harness.adaptive_config import SGLANG_DEFAULT_CONFIG, VLLM_TABLE_KEY
from specbench.harness.adaptive_steps import AdaptiveSpec, SglangController, VllmController
from specbench.harness.sim_engine import SimEngine
from specbench.spec_config import SpecConfig

TABLE = {"num_speculative_tokens": 3, VLLM_TABLE_KEY: [[1, 1, 3], [2, 64, 0]]}


class AcceptAll:
    """Every draft accepted (accept length k + 1), or none with ``accept=False``."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.decoded: list[tuple[SpecConfig | None, int]] = []

    def decode_step_s(self, config: SpecConfig | None, batch: int) -> float:
        self.decoded.append((config, batch))
        return 0.01 + 0.001 * batch + (0.002 * config.num_steps if config else 0.0)

    def prefill_s(self, prompt_tokens: int, batch: int = 1) -> float:
        return 0.001

    def sample_accept_lengths(
        self, config: SpecConfig, domain: str, n: int, rng: np.random.Generator
    ) -> npt.NDArray[Any]:
        return np.full(n, config.num_steps + 1 if self.accept else 1)


def sglang(body: dict[str, Any], initial: int = 3) -> SglangController:
    controller = AdaptiveSpec.sglang(body, initial_steps=initial, name="cfg").controller()
    assert isinstance(controller, SglangController)
    return controller


def test_sglang_routes_a_batch_to_the_largest_key_not_above_it() -> None:
    controller = sglang(SGLANG_DEFAULT_CONFIG)
    assert [controller.config_for(b) for b in (64, 200)] == [None, None]  # "64": [0]
    assert controller.config_for(1) == SpecConfig(3, 1, 4)  # starts at the launch's 3
    assert controller.config_for(7) == SpecConfig(3, 1, 4)  # still tier "1"
    # Tier "8" holds [0, 1, 3]: it starts at the launch's 3. Tier "32" holds [0, 1]
    # without it, so it starts at its middle candidate, 1.
    assert controller.config_for(8) == controller.config_for(31) == SpecConfig(3, 1, 4)
    assert controller.config_for(32) == SpecConfig(1, 1, 2)


def test_sglang_moves_up_on_full_acceptance_and_down_to_zero_on_none() -> None:
    controller = sglang({"1": {"candidate_steps": [0, 1, 3, 5]}}, initial=1)
    for _ in range(40):
        steps = controller.slots[1].current
        controller.observe(1, [steps])  # every draft accepted
    assert controller.slots[1].current == 5
    for _ in range(60):
        controller.observe(1, [0])
    assert controller.slots[1].current in (0, 1)  # off, or probing one step from off
    assert controller.slots[1].ema < 0.5


def test_vllm_runs_the_range_holding_the_batch_capped_at_num_speculative_tokens() -> None:
    controller = AdaptiveSpec.vllm(TABLE, name="t").controller()
    assert isinstance(controller, VllmController)
    assert [controller.steps_at(b) for b in (1, 2, 64, 500)] == [3, 0, 0, 0]
    gappy = VllmController([(1, 2, 2), (8, 16, 1)], k_max=2)
    assert [gappy.steps_at(b) for b in (1, 5, 8, 99)] == [2, 2, 1, 1]


def test_a_config_the_engine_would_refuse_is_refused_when_it_enters() -> None:
    with pytest.raises(BadInputError, match="sglang would refuse"):
        AdaptiveSpec.sglang({"1": {"candidate_steps": [-1]}}, initial_steps=1, name="x.json")
    with pytest.raises(BadInputError, match="vllm would refuse"):
        AdaptiveSpec.vllm({**TABLE, VLLM_TABLE_KEY: [[1, 4, 5]]}, name="spec")


def run(engine: SimEngine, count: int, tokens: int = 33) -> int:
    """``count`` requests at once to the end; the number of verify steps."""
    for i in range(count):
        engine.admit(f"r{i}", 8, tokens, "chat")
    verifies = 0
    while engine.has_work:
        verifies += len(engine.step().verify)
    return verifies


def test_sim_engine_speculates_alone_and_not_in_a_batch_under_a_table() -> None:
    model = AcceptAll()
    spec = AdaptiveSpec.vllm(TABLE, name="t")
    alone = SimEngine(model, SpecConfig(3, 1, 4), adaptive=spec)
    # 32 tokens after the prefill's first, 4 per verify: 8 verify steps.
    assert run(alone, 1) == 8
    batch = SimEngine(model, SpecConfig(3, 1, 4), adaptive=spec)
    assert run(batch, 4) == 0
    assert {config for config, b in model.decoded if b == 4} == {None}


def test_sim_engine_under_sglang_learns_the_longest_chain_when_everything_is_accepted() -> None:
    model = AcceptAll()
    body = {"1": {"candidate_steps": [1, 3, 5, 7]}}
    engine = SimEngine(
        model, SpecConfig(1, 1, 2), adaptive=AdaptiveSpec.sglang(body, initial_steps=1, name="c")
    )
    run(engine, 1, tokens=400)
    assert engine.controller is not None
    assert engine.controller.config_for(1) == SpecConfig(7, 1, 8)
    # Rejecting every draft drives it down to the shortest chain.
    rejecting = SimEngine(AcceptAll(accept=False), SpecConfig(7, 1, 8),
                          adaptive=AdaptiveSpec.sglang(body, initial_steps=7, name="c"))  # fmt: skip
    run(rejecting, 1, tokens=400)
    assert rejecting.controller is not None
    assert rejecting.controller.config_for(1) == SpecConfig(1, 1, 2)


def test_adaptive_draws_are_reproducible() -> None:
    def tokens_per_step(seed: int) -> list[int]:
        from tests.support.sweeps import truth_model

        engine = SimEngine(truth_model(), None, seed=seed,
                           adaptive=AdaptiveSpec.sglang(SGLANG_DEFAULT_CONFIG, initial_steps=3, name="d"))  # fmt: skip
        engine.admit("a", 16, 64, "code")
        out: list[int] = []
        while engine.has_work:
            out.append(sum(engine.step().tokens.values()))
        return out

    assert tokens_per_step(0) == tokens_per_step(0)
    assert tokens_per_step(0) != tokens_per_step(1)


def test_the_settled_chain_follows_the_expected_acceptance() -> None:
    body = {"1": {"candidate_steps": [1, 3, 5]}, "8": {"candidate_steps": [0, 1]}}
    spec = AdaptiveSpec.sglang(body, initial_steps=3, name="c")
    # Every draft accepted: the tier climbs to its longest chain; none: to its shortest.
    assert spec.settled_config(1, lambda c: float(c.num_steps)) == SpecConfig(5, 1, 6)
    assert spec.settled_config(1, lambda c: 0.0) == SpecConfig(1, 1, 2)
    # With no speculation among the candidates and nothing accepted, it settles off or
    # on the one-step probe it makes from off.
    assert spec.settled_config(8, lambda c: 0.0) in (None, SpecConfig(1, 1, 2))
    table = AdaptiveSpec.vllm(TABLE, name="t")
    assert table.settled_config(1, lambda c: 3.0) == SpecConfig(3, 1, 4)
    assert table.settled_config(4, lambda c: 3.0) is None
