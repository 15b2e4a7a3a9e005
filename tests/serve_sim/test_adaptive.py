"""serve-sim with SGLang's --speculative-adaptive: the steps follow the running batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.harness.engine import Deployment
from specbench.harness.sglang import SGLANG
from specbench.model import load_target
from specbench.serve_sim.options import resolve_options
from specbench.serve_sim.scheduler import SimServer
from specbench.spec_config import SpecConfig
from tests.support.sweeps import truth_model


def launch(config: SpecConfig, *extra: str) -> list[str]:
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=8)
    return [*SGLANG.launch_args(deployment, config, host="127.0.0.1", port=30001), *extra]


def test_adaptive_without_a_file_runs_sglang_s_default_tiers() -> None:
    options = resolve_options(
        target=None,
        hardware=None,
        sglang_args=launch(SpecConfig(3, 1, 4), "--speculative-adaptive"),
    )
    assert options.adaptive is not None and options.adaptive.name == "sglang-default"
    server = SimServer(options, truth_model())
    info = server.server_info()
    assert info["speculative_adaptive"] is True
    tiers = info["internal_states"][0]["adaptive_tiers"]
    assert set(tiers) == {"1", "8", "32", "64"}
    assert tiers["1"]["current_steps"] == 3  # the launch's num_steps, one of [1, 3, 5, 7]


def test_adaptive_with_a_file_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"1": {"candidate_steps": [2, 3]}, "4": {"candidate_steps": [0]}}))
    args = launch(
        SpecConfig(2, 1, 3), "--speculative-adaptive", "--speculative-adaptive-config", str(path)
    )
    options = resolve_options(target=None, hardware=None, sglang_args=args)
    server = SimServer(options, truth_model())
    assert server.engine.step_config(1) == SpecConfig(2, 1, 3)
    assert server.engine.step_config(4) is None


@pytest.mark.parametrize(
    ("config", "extra", "message"),
    [
        (SpecConfig(3, 4, 8), ["--speculative-adaptive"], "topk 1 only"),
        (SpecConfig(3, 1, 4), ["--speculative-adaptive-config", "x.json"], "does nothing"),
        (SpecConfig(3, 1, 4), ["--speculative-adaptive", "--speculative-adaptive-config", "BAD"],
         "sglang would refuse"),
    ],
)  # fmt: skip
def test_what_sglang_refuses_is_one_line_before_serving(
    config: SpecConfig, extra: list[str], message: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"candidate_steps": [-1]}}))
    extra = [str(bad) if e == "BAD" else e for e in extra]
    with pytest.raises(BadInputError, match=message):
        resolve_options(target=None, hardware=None, sglang_args=launch(config, *extra))
