"""The why-section's numbers: step-time parts, the interconnect sentence, memory."""

from __future__ import annotations

from specbench.model import load_hardware, load_target
from specbench.report.why import (
    interconnect_text,
    model_curve,
    step_breakdown,
)
from specbench.spec_config import SpecConfig


def test_host_staged_step_time_is_dominated_by_all_reduce_at_load() -> None:
    target = load_target("minimax-m2.7")
    staged = load_hardware("l40s-pcie-host-staged", tp=8)
    nvlink = load_hardware("h200-nvlink", tp=4)
    spec = step_breakdown(target, staged, SpecConfig(3, 4, 8), 32, 2.6)
    assert spec.allreduce_ms > spec.verify_ms > spec.draft_ms > 0
    fast = step_breakdown(target, nvlink, SpecConfig(3, 4, 8), 32, 2.6)
    assert fast.allreduce_ms < 0.2 * fast.verify_ms
    base = step_breakdown(target, nvlink, None, 1, None)
    assert base.draft_ms == 0 and base.tokens_per_step == 1.0
    # Speculation on NVLink costs less per token than no speculation at one stream.
    assert step_breakdown(target, nvlink, SpecConfig(3, 4, 8), 1, 2.6).ms_per_token < (
        base.ms_per_token
    )


def test_interconnect_sentence_counts_the_collectives() -> None:
    target = load_target("minimax-m2.7")
    text = interconnect_text(load_hardware("l40s-pcie-host-staged", tp=4), target)
    assert "host memory" in text and "124 of them" in text
    assert "no all-reduce" in interconnect_text(load_hardware("h200-nvlink", tp=1), target)


def test_model_curve_falls_with_load_on_host_staged() -> None:
    target = load_target("minimax-m2.7")
    curve = model_curve(
        target, load_hardware("l40s-pcie-host-staged", tp=8), SpecConfig(1, 1, 2), [1, 8, 64]
    )
    assert [c for c, _ in curve] == [1, 8, 64]
    assert curve[0][1] > curve[-1][1]
