"""SimEngine invariants, on a small fake model and on the real PerformanceModel."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from specbench.harness.sim_engine import SimEngine
from specbench.spec_config import SpecConfig

CONFIG = SpecConfig(3, 4, 8)


class FakeModel:
    """Step times that reveal the batch size; accept lengths uniform in 1..num_steps+1."""

    def __init__(self) -> None:
        self.decode_calls: list[tuple[SpecConfig | None, int]] = []
        self.prefill_calls: list[tuple[int, int]] = []

    def decode_step_s(self, config: SpecConfig | None, batch: int) -> float:
        self.decode_calls.append((config, batch))
        return 0.010 + 0.001 * batch + (0.005 if config is not None else 0.0)

    def prefill_s(self, prompt_tokens: int, batch: int = 1) -> float:
        self.prefill_calls.append((prompt_tokens, batch))
        return 0.001 * prompt_tokens * batch

    def sample_accept_lengths(
        self, config: SpecConfig, domain: str, n: int, rng: np.random.Generator
    ) -> npt.NDArray[Any]:
        return rng.integers(1, config.num_steps + 2, size=n)


def drive(
    engine: SimEngine, requests: dict[str, tuple[int, int, str]], *, stagger: int = 0
) -> dict[str, Any]:
    """Admit requests (optionally one per `stagger` steps) and run to completion."""
    emitted = dict.fromkeys(requests, 0)
    verify = dict.fromkeys(requests, 0)
    decode_steps = dict.fromkeys(requests, 0)
    finished: list[str] = []
    order = list(requests)
    steps = 0
    while order or engine.has_work:
        if order and (stagger == 0 or steps % stagger == 0):
            batch = order if stagger == 0 else order[:1]
            for rid in batch:
                engine.admit(rid, *requests[rid])
            order = order[len(batch) :]
        res = engine.step()
        steps += 1
        assert steps < 100_000
        for rid, n in res.tokens.items():
            assert n >= 1
            emitted[rid] += n
            assert emitted[rid] <= requests[rid][1], "emitted more than max_new_tokens"
            if rid not in res.prefilled:
                decode_steps[rid] += 1
        for rid, v in res.verify.items():
            assert v == 1
            verify[rid] += v
        assert set(res.verify) <= set(res.tokens) - set(res.prefilled)
        finished.extend(res.finished)
    return {
        "emitted": emitted,
        "verify": verify,
        "decode_steps": decode_steps,
        "finished": finished,
    }


@pytest.mark.parametrize("config", [None, CONFIG, SpecConfig(5, 1, 6)])
@pytest.mark.parametrize("stagger", [0, 3])
def test_invariants_on_fake_model(config: SpecConfig | None, stagger: int) -> None:
    rng = np.random.default_rng(1)
    requests = {
        f"r{i}": (int(rng.integers(1, 300)), int(rng.integers(1, 60)), "code") for i in range(25)
    }
    out = drive(SimEngine(FakeModel(), config, seed=3), requests, stagger=stagger)
    assert sorted(out["finished"]) == sorted(requests)
    assert out["emitted"] == {rid: spec[1] for rid, spec in requests.items()}
    if config is None:
        assert all(v == 0 for v in out["verify"].values())
    else:
        assert out["verify"] == out["decode_steps"]


def test_step_time_is_decode_of_running_batch_plus_prefill() -> None:
    model = FakeModel()
    engine = SimEngine(model, CONFIG)
    assert engine.step().duration_s == 0.0  # nothing to do
    engine.admit("a", 100, 10, "chat")
    engine.admit("b", 300, 10, "chat")
    first = engine.step()
    assert first.prefilled == ["a", "b"] and first.tokens == {"a": 1, "b": 1}
    assert first.verify == {}
    assert first.duration_s == pytest.approx(model.prefill_s(200, 2))  # mean prompt, batch 2
    engine.admit("c", 50, 10, "chat")
    second = engine.step()
    assert second.prefilled == ["c"]
    assert set(second.verify) == {"a", "b"}
    assert second.duration_s == pytest.approx(
        model.decode_step_s(CONFIG, 2) + model.prefill_s(50, 1)
    )
    third = engine.step()
    assert third.duration_s == pytest.approx(model.decode_step_s(CONFIG, 3))
    assert engine.now_s == pytest.approx(first.duration_s + second.duration_s + third.duration_s)


def test_single_token_requests_finish_at_prefill_and_abort_drops() -> None:
    engine = SimEngine(FakeModel(), CONFIG)
    engine.admit("one", 10, 1, "math")
    engine.admit("gone", 10, 50, "math")
    res = engine.step()
    assert res.finished == ["one"]
    assert engine.abort("gone") and not engine.abort("gone")
    assert not engine.has_work
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.admit("bad", 10, 0, "chat")
    engine.admit("x", 10, 5, "chat")
    with pytest.raises(ValueError, match="already admitted"):
        engine.admit("x", 10, 5, "chat")


def test_draws_depend_on_request_id_and_seed_not_on_order() -> None:
    def tokens_per_step(order: list[str], seed: int) -> dict[str, list[int]]:
        engine = SimEngine(FakeModel(), CONFIG, seed=seed)
        for rid in order:
            engine.admit(rid, 10, 40, "chat")
        seen: dict[str, list[int]] = {rid: [] for rid in order}
        while engine.has_work:
            for rid, n in engine.step().tokens.items():
                seen[rid].append(n)
        return seen

    a = tokens_per_step(["x", "y", "z"], seed=0)
    assert a == tokens_per_step(["z", "x", "y"], seed=0)
    assert a != tokens_per_step(["x", "y", "z"], seed=1)


def test_invariants_on_real_performance_model(real_model: Any) -> None:
    rng = np.random.default_rng(2)
    requests = {
        f"r{i}": (
            int(rng.integers(5, 400)),
            int(rng.integers(1, 200)),
            ("chat", "code", "math")[i % 3],
        )
        for i in range(30)
    }
    for config in (None, CONFIG, SpecConfig(8, 8, 64)):
        out = drive(SimEngine(real_model, config, seed=5), requests, stagger=2)
        assert sorted(out["finished"]) == sorted(requests)
        assert out["emitted"] == {rid: spec[1] for rid, spec in requests.items()}
        if config is not None:
            assert out["verify"] == out["decode_steps"]
            # accepted tokens per verify step stay within 1..num_steps+1
            for rid, spec in requests.items():
                if spec[1] > 1:
                    assert out["verify"][rid] <= spec[1] - 1
                    assert (spec[1] - 1) <= out["verify"][rid] * (config.num_steps + 1)
