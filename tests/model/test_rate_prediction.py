"""The model's prediction at a request rate against the simulator's open loop on the
same model: the operating point's TPOT, and saturation above capacity."""

from __future__ import annotations

import pytest

from specbench.harness.loads import ConstantArrival, RateLoad
from specbench.harness.prompts import Prompt, estimate_tokens
from specbench.harness.rate_metrics import summarize_rate
from specbench.harness.sim_engine import SimEngine
from specbench.harness.sim_open_loop import run_open_loop_sim
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.model.rate_prediction import predict_rates
from specbench.spec_config import SpecConfig

PROMPT = Prompt("p", "chat", "hello there " * 20)
TOKENS = 128


@pytest.mark.parametrize("config", [None, SpecConfig(3, 1, 4)], ids=["baseline", "3-1-4"])
def test_predicted_tpot_at_a_rate_is_the_simulators(config: SpecConfig | None) -> None:
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
    rates = [4.0, 12.0]
    predicted = predict_rates(
        model, config, rates, input_len=estimate_tokens(PROMPT.text), output_len=TOKENS,
        domain=PROMPT.domain,
    )  # fmt: skip
    for rate, point in zip(rates, predicted, strict=True):
        load = RateLoad(rate, ConstantArrival())
        run = run_open_loop_sim(
            SimEngine(model, config), [PROMPT] * int(rate * 60), load,
            max_new_tokens=TOKENS, timeout_s=600.0, id_prefix="t",
        )  # fmt: skip
        measured = summarize_rate(run, load)
        assert not point.saturated and point.tpot_ms is not None
        assert point.tpot_ms == pytest.approx(measured.tpot_ms_p50, rel=0.15)


def test_above_capacity_the_rate_is_saturated() -> None:
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
    (point,) = predict_rates(model, None, [1000.0], input_len=64, output_len=TOKENS)
    assert point.saturated and point.tpot_ms is None
    assert 0 < point.capacity_per_s < 1000.0
