"""Cost model structure: MoE expert growth, all-reduce count, grid == scalar, perturbation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from specbench.model import (
    CostScales,
    PerformanceModel,
    Prediction,
    break_even_concurrency,
    load_hardware,
    load_target,
)
from specbench.spec_config import SpecConfig, valid_configs


@pytest.fixture(scope="module")
def model() -> PerformanceModel:
    return PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"), samples=500)


def test_moe_distinct_experts_grow_with_tokens(model: PerformanceModel) -> None:
    e = model.cost.experts_touched(np.array([1.0, 8.0, 10_000.0]))
    assert e[0] == pytest.approx(8.0)
    assert e[1] == pytest.approx(256 * (1 - (1 - 8 / 256) ** 8))  # ~57
    assert 57 < e[1] < 58
    assert e[2] == pytest.approx(256.0)


def test_moe_verify_cost_grows_faster_than_dense() -> None:
    def ratio(target: str, hw: str, tp: int) -> float:
        m = PerformanceModel(load_target(target), load_hardware(hw, tp), samples=50)
        f = m.cost.target_forward_s
        return float(f(np.array(8.0), np.array(1.0)) / f(np.array(1.0), np.array(1.0)))

    assert ratio("minimax-m2.7", "h200-nvlink", 4) > 1.2
    assert ratio("llama-3.1-8b", "h100-nvlink", 1) < 1.05


def test_two_allreduces_per_layer_plus_logits_gather(model: PerformanceModel) -> None:
    t, h = model.target, model.hardware
    fit = h.active_fit
    assert fit is not None
    slower = PerformanceModel(t, h, samples=50, cost_scales=CostScales(allreduce_alpha=2.0))
    extra = slower.decode_step_s(None, 1) - model.decode_step_s(None, 1)
    # 62 layers x 2 all-reduces + 1 logits all-gather, each paying alpha once more.
    assert extra == pytest.approx((2 * 62 + 1) * fit.alpha_us * 1e-6, rel=1e-9)


def test_single_gpu_has_no_communication() -> None:
    m = PerformanceModel(load_target("llama-3.1-8b"), load_hardware("h100-nvlink", 1), samples=50)
    slower = PerformanceModel(
        m.target, m.hardware, samples=50, cost_scales=CostScales(allreduce_alpha=10.0)
    )
    assert slower.decode_step_s(SpecConfig(3, 4, 8), 4) == m.decode_step_s(SpecConfig(3, 4, 8), 4)


def test_step_time_grows_with_each_knob(model: PerformanceModel) -> None:
    assert model.decode_step_s(SpecConfig(3, 4, 12), 1) > model.decode_step_s(
        SpecConfig(3, 4, 8), 1
    )
    assert model.decode_step_s(SpecConfig(5, 4, 8), 1) > model.decode_step_s(SpecConfig(3, 4, 8), 1)
    assert model.decode_step_s(SpecConfig(3, 8, 8), 1) > model.decode_step_s(SpecConfig(3, 4, 8), 1)
    assert model.decode_step_s(None, 64) > model.decode_step_s(None, 1)


def test_prefill_grows_with_prompt(model: PerformanceModel) -> None:
    assert model.prefill_s(4096) > model.prefill_s(256) > 0
    assert model.prefill_s(256, batch=8) > model.prefill_s(256)


def test_grid_matches_scalar_predictions(model: PerformanceModel) -> None:
    cfgs = valid_configs()[::37]
    concs = [1, 8, 64]
    grid = model.predict_grid(cfgs, concs)
    assert len(grid) == len(cfgs) * len(concs)
    for p in grid[::5]:
        q = model.predict(p.config, p.concurrency)
        assert p.speedup == pytest.approx(q.speedup, rel=1e-9)
        assert p.tau == pytest.approx(q.tau, rel=1e-12)
        row = p.as_row()
        for key in ("num_steps", "topk", "num_draft_tokens", "concurrency", "tau", "speedup"):
            assert key in row
        assert row["simulated"] is True


def test_baseline_prediction(model: PerformanceModel) -> None:
    p = model.predict(None, 4)
    assert p.speedup == 1.0 and p.tau == 1.0 and p.config is None
    assert p.as_row()["config"] == "baseline"


def test_perturbed_is_deterministic_and_different(model: PerformanceModel) -> None:
    cfg = SpecConfig(3, 4, 8)
    a, b, c = model.perturbed(1), model.perturbed(1), model.perturbed(2)
    assert a.expected_tau(cfg) == b.expected_tau(cfg)
    assert a.decode_step_s(cfg, 8) == b.decode_step_s(cfg, 8)
    assert a.predict(cfg, 1).speedup != c.predict(cfg, 1).speedup
    assert a.predict(cfg, 1).speedup != model.predict(cfg, 1).speedup
    weak = model.perturbed(1, strength=0.0)
    assert weak.decode_step_s(cfg, 8) == pytest.approx(model.decode_step_s(cfg, 8), rel=1e-12)


def _pred(conc: int, speedup: float) -> Prediction:
    return Prediction(SpecConfig(3, 4, 8), conc, 2.5, speedup, 1.0, 1.0, 1.0, 1.0)


def test_break_even_interpolates_in_log_concurrency() -> None:
    assert break_even_concurrency([_pred(1, 2.0), _pred(100, 0.0)]) == pytest.approx(10.0)
    assert break_even_concurrency([_pred(4, 1.5), _pred(1, 2.0)]) is None
    assert break_even_concurrency([_pred(1, 0.5), _pred(4, 0.4)]) is None
    assert break_even_concurrency([]) is None
    other = replace(_pred(2, 1.0), config=SpecConfig(2, 4, 8))
    with pytest.raises(ValueError):
        break_even_concurrency([_pred(1, 2.0), other])
