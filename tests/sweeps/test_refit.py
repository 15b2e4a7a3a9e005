"""Calibration in the loop: the refit model corrects a wrong prior and knows when it is done.

Truths are the performance model on another machine class, perturbed (SIMULATED), with
1% measurement noise: the search sees only measured speedups and taus.
"""

from __future__ import annotations

import numpy as np
import pytest

from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.spec_config import SpecConfig
from specbench.sweeps.refit import InLoopModel
from specbench.sweeps.space import parse_space

NOISE = 0.01


def _space() -> list[SpecConfig]:
    return [c for c in parse_space(None).configs if c.num_steps <= 5 and c.topk <= 4]


def _truth(
    hardware: str, seed: int, configs: list[SpecConfig]
) -> dict[SpecConfig, tuple[float, float]]:
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware(hardware), seed=seed)
    preds = model.perturbed(seed).predict_grid(configs, [1])
    return {p.config: (p.speedup, p.tau) for p in preds if p.config is not None}


def _search(prior_hw: str, truth_hw: str, seed: int) -> tuple[int, int, InLoopModel, float]:
    """(launches until within 2% of the true best, launches until settled, model, best)."""
    configs = _space()
    truth = _truth(truth_hw, seed, configs)
    prior = PerformanceModel(load_target("minimax-m2.7"), load_hardware(prior_hw), seed=0)
    refit = InLoopModel(prior, configs, 1, noise=NOISE, seed=seed)
    rng = np.random.default_rng(seed)
    goal = 0.98 * max(s for s, _ in truth.values())
    found = 0
    for launch in range(1, len(configs) + 1):
        config = refit.next_config()
        assert config is not None
        speedup, tau = truth[config]
        refit.add(config, speedup * (1 + rng.normal(0, NOISE)), tau)
        best = refit.best_measured()
        assert best is not None
        if not found and truth[best[0]][0] >= goal:
            found = launch
        if refit.settled(launch) is not None:
            return found, launch, refit, max(s for s, _ in truth.values())
    return found, len(configs), refit, goal


def test_before_any_measurement_it_ranks_by_the_prior() -> None:
    configs = _space()
    prior = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), seed=0)
    refit = InLoopModel(prior, configs, 1)
    best_prior = max(prior.predict_grid(configs, [1]), key=lambda p: p.speedup).config
    assert refit.next_config() == best_prior
    assert refit.settled(0) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_a_wrong_prior_finds_the_best_in_a_few_launches(seed: int) -> None:
    """The NVLink prior on a host-staged PCIe machine: measurements correct it."""
    found, settled, _, _ = _search("h200-nvlink", "h100-pcie-host-staged", seed)
    configs = len(_space())
    assert 0 < found <= 8, (found, configs)
    assert found <= settled < configs / 3


def test_settled_means_nothing_unmeasured_is_predicted_above_the_best() -> None:
    _, launches, refit, _ = _search("h200-nvlink", "h100-pcie-p2p", 0)
    done = refit.settled(launches)
    assert done is not None
    ranked = refit.ranked()
    assert all(r.high <= done.best_measured_speedup * (1 + NOISE) for r in ranked)
    text = done.describe()
    assert text.startswith(f"settled after {launches} launches: the model's best unmeasured")
    assert "below the best measured" in text


def test_without_a_tau_the_cost_fit_alone_moves_the_prediction() -> None:
    configs = _space()
    prior = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), seed=0)
    refit = InLoopModel(prior, configs, 1)
    before = {r.config: r.speedup for r in refit.ranked()}
    first = refit.next_config()
    assert first is not None
    refit.add(first, before[first] * 0.7)  # the machine is much slower than the prior says
    after = {r.config: r.speedup for r in refit.ranked()}
    assert np.median([after[c] / before[c] for c in after]) < 0.9
