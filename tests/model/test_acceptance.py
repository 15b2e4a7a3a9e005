"""Acceptance Monte-Carlo: invariants, common random numbers, Leviathan limit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from specbench.model import DOMAINS, PerformanceModel, load_hardware, load_target
from specbench.model.acceptance import (
    DomainAcceptance,
    leviathan_expected_tokens,
    simulate_need,
    tau_from_need,
)
from specbench.spec_config import SpecConfig, valid_configs


@pytest.fixture(scope="module")
def model() -> PerformanceModel:
    return PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), samples=800)


def test_tau_bounds_hold_for_every_valid_config(model: PerformanceModel) -> None:
    for cfg in valid_configs():
        taus = model.tau_samples(cfg, "chat")
        assert taus.min() >= 1
        assert taus.max() <= min(cfg.num_steps + 1, cfg.num_draft_tokens), cfg
        assert 1.0 <= model.expected_tau(cfg) <= min(cfg.num_steps + 1, cfg.num_draft_tokens)


def test_tau_is_samplewise_monotone_in_num_draft_tokens(model: PerformanceModel) -> None:
    for steps in (2, 5, 8):
        for topk in (2, 4, 8):
            prev = None
            for ndt in range(2, min(64, steps * topk + 1) + 1):
                taus = model.tau_samples(SpecConfig(steps, topk, ndt), "code")
                if prev is not None:
                    assert np.all(taus >= prev), (steps, topk, ndt)
                prev = taus


def test_tau_grows_with_steps_and_topk_when_budget_is_free(model: PerformanceModel) -> None:
    def free(steps: int, topk: int) -> float:
        ndt = steps + 1 if topk == 1 else min(64, steps * topk + 1)
        return model.expected_tau(SpecConfig(steps, topk, ndt))

    for topk in (1, 2, 4, 8):
        seq = [free(s, topk) for s in range(1, 9)]
        assert all(b >= a - 0.02 for a, b in itertools.pairwise(seq)), (topk, seq)
        assert seq[-1] > seq[0] + 0.5
    for steps in (2, 3, 5, 8):
        seq = [free(steps, k) for k in (1, 2, 4, 8)]
        assert all(b >= a - 0.02 for a, b in itertools.pairwise(seq)), (steps, seq)
        assert seq[-1] > seq[0]


def test_budget_binds_a_deep_tree() -> None:
    m = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), samples=400)
    # With 2 nodes to verify, depth cannot help: tau <= 2 whatever num_steps is.
    assert m.expected_tau(SpecConfig(8, 4, 2)) <= 2.0
    assert m.expected_tau(SpecConfig(8, 4, 2)) == pytest.approx(
        m.expected_tau(SpecConfig(1, 4, 2)), abs=1e-9
    )


def test_seeded_and_reproducible() -> None:
    t, h = load_target("llama-3.1-8b"), load_hardware("h100-nvlink")
    cfg = SpecConfig(3, 4, 8)
    a = PerformanceModel(t, h, seed=3, samples=300).tau_samples(cfg)
    b = PerformanceModel(t, h, seed=3, samples=300).tau_samples(cfg)
    c = PerformanceModel(t, h, seed=4, samples=300).tau_samples(cfg)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_leviathan_chain_formula_in_iid_limit() -> None:
    # sigma = 0 and no depth decay: every node accepts the draft's top-1 with a * c.
    for mu, agreement in ((0.0, 0.8), (1.5, 0.95), (-1.0, 0.6)):
        params = DomainAcceptance(mu, 0.0, agreement, 1.0)
        alpha = agreement / (1.0 + np.exp(-mu))
        need = simulate_need(params, 1, 20000, 0, "chat")
        for gamma in (1, 3, 6):
            got = tau_from_need(need, gamma, gamma + 1).mean()
            assert got == pytest.approx(leviathan_expected_tokens(alpha, gamma), abs=0.03)


def test_domains_are_ordered_and_span_the_calibrated_range(model: PerformanceModel) -> None:
    taus = {d: model.expected_tau(SpecConfig(3, 4, 8), d) for d in DOMAINS}
    assert taus["chat"] < taus["code"] < taus["math"]
    assert 2.15 <= taus["chat"] <= 2.5
    assert 2.7 <= taus["math"] <= 3.1


def test_sample_accept_lengths_for_the_sim_backend(model: PerformanceModel) -> None:
    cfg = SpecConfig(3, 4, 8)
    draws = model.sample_accept_lengths(cfg, "math", 5000, np.random.default_rng(1))
    assert draws.dtype.kind == "i"
    assert draws.min() >= 1 and draws.max() <= 4
    assert draws.mean() == pytest.approx(model.expected_tau(cfg, "math"), abs=0.08)
    again = model.sample_accept_lengths(cfg, "math", 5000, np.random.default_rng(1))
    assert np.array_equal(draws, again)


def test_expected_tau_is_the_mean_of_the_samples_past_the_table(model: PerformanceModel) -> None:
    # spec_config accepts num_draft_tokens up to steps * topk + 1 = 65; the sim backend
    # draws from tau_samples, so the prediction must be their mean there too.
    for cfg in (SpecConfig(8, 8, 65), SpecConfig(8, 8, 64), SpecConfig(3, 4, 8)):
        assert model.expected_tau(cfg) == pytest.approx(model.tau_samples(cfg).mean(), abs=1e-12)
    assert model.expected_tau(SpecConfig(8, 8, 65)) >= model.expected_tau(SpecConfig(8, 8, 64))
