"""serve-sim's options from SGLang launch arguments: it takes what SGLang takes, no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.harness.engine import Deployment
from specbench.harness.sglang import SGLANG
from specbench.model import load_target
from specbench.serve_sim.options import resolve_options
from specbench.spec_config import SpecConfig


def test_the_launch_line_specbench_builds_sets_serve_sim_s_batch_limits() -> None:
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=8)
    args = SGLANG.launch_args(deployment, SpecConfig(3, 4, 8), host="127.0.0.1", port=30001)
    options = resolve_options(target=None, hardware=None, sglang_args=args)
    assert (options.max_running_requests, options.cuda_graph_max_bs) == (8, 8)
    assert options.config == SpecConfig(3, 4, 8)


def test_a_flag_sglang_refuses_is_refused_not_hidden() -> None:
    # SGLang 0.5.23: "ambiguous option: --cuda-graph-max-bs could match
    # --cuda-graph-max-bs-decode, --cuda-graph-max-bs-prefill".
    args = ["--model-path", load_target("minimax-m2.7").model_path, "--cuda-graph-max-bs", "8"]
    with pytest.raises(BadInputError, match="ambiguous option: --cuda-graph-max-bs"):
        resolve_options(target=None, hardware=None, sglang_args=args)


def test_a_local_model_folder_no_preset_names_is_read_from_its_config() -> None:
    folder = Path(__file__).resolve().parents[1] / "data" / "model_configs" / "Qwen3-30B-A3B"
    options = resolve_options(target=None, hardware=None, sglang_args=["--model-path", str(folder)])
    assert options.target.name == "Qwen3-30B-A3B"
    assert options.target.arch.num_experts == 128


@pytest.mark.parametrize(
    "config",
    ["mtp:3,1,4", "draft_model:3,4,8", "ngram:11,1,12:speculative_ngram_max_bfs_breadth=4",
     "dflash:15,1,16"],
)  # fmt: skip
def test_every_method_s_line_is_read_and_answered_not_simulated(config: str) -> None:
    """serve-sim reads every method's SGLang line (its own flags included) and refuses
    the methods it has no model of in one line, instead of serving EAGLE3's numbers."""
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=8)
    args = SGLANG.launch_args(deployment, SpecConfig.parse(config))
    with pytest.raises(BadInputError, match=r"is not simulated: serve-sim models EAGLE/EAGLE3"):
        resolve_options(target=None, hardware=None, sglang_args=args)
    eagle = SGLANG.launch_args(deployment, SpecConfig.parse("eagle:3,4,8"))
    assert resolve_options(target=None, hardware=None, sglang_args=eagle).config is not None
