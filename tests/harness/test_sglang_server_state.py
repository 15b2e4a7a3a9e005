"""Reading SGLang's /server_info: equal launch terms, config check, tau, auto config."""

from __future__ import annotations

import math
from typing import Any

import pytest

from specbench.harness.sglang_flags import spelling_for
from specbench.harness.sglang_server_state import (
    TAU_PER_REQUEST,
    TAU_SERVER_AVERAGE,
    TAU_UNAVAILABLE,
    ExpectedServer,
    auto_config_for,
    equal_launch_terms,
    launched_config_problems,
    parse_version,
    resolve_tau,
    server_avg_accept_length,
    trim_server_info,
)
from specbench.spec_config import SpecConfig

CONFIG = SpecConfig(3, 4, 8)


def _info(**overrides: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "version": "0.5.23",
        "model_path": "m",
        "speculative_algorithm": "EAGLE3",
        "speculative_draft_model_path": "d",
        "speculative_num_steps": 3,
        "speculative_eagle_topk": 4,
        "speculative_num_draft_tokens": 8,
        "max_running_requests": 32,
        "cuda_graph_max_bs_decode": 32,
        "cuda_graph_config": {"decode": {"max_bs": 32}, "prefill": {"max_bs": None}},
        "tokenizer_path": "m",
        "internal_states": [{"avg_spec_accept_length": 2.6, "last_gen_throughput": 1.0}],
    }
    info.update(overrides)
    return info


EXPECTED = ExpectedServer(CONFIG, "EAGLE3", "d", 32, 32)


def test_equal_launch_terms_follow_bench_speculative() -> None:
    assert equal_launch_terms(64) == [
        "--max-running-requests",
        "64",
        "--cuda-graph-max-bs-decode",
        "64",
    ]
    assert equal_launch_terms(2, spelling_for("0.5.9"))[2] == "--cuda-graph-max-bs"
    with pytest.raises(ValueError):
        equal_launch_terms(0)


def test_trim_keeps_version_and_speculative_args_only() -> None:
    kept = trim_server_info(_info())
    assert kept["version"] == "0.5.23"
    assert kept["speculative_draft_model_path"] == "d"
    assert kept["avg_spec_accept_length"] == 2.6
    assert "tokenizer_path" not in kept and "internal_states" not in kept


def test_matching_server_has_no_problems() -> None:
    assert launched_config_problems(_info(), EXPECTED) == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"speculative_algorithm": "NGRAM"}, "speculative_algorithm"),
        ({"speculative_draft_model_path": "other"}, "speculative_draft_model_path"),
        ({"speculative_eagle_topk": 1}, "speculative_eagle_topk"),
        ({"max_running_requests": 48}, "max_running_requests"),
        ({"cuda_graph_config": {"decode": {"max_bs": 8}}}, "cuda_graph_config.decode.max_bs"),
    ],
)
def test_each_difference_is_named(override: dict[str, Any], field: str) -> None:
    (problem,) = launched_config_problems(_info(**override), EXPECTED)
    assert problem.startswith(field)


def test_missing_fields_are_problems_not_a_pass() -> None:
    info = _info()
    del info["speculative_num_steps"]
    assert launched_config_problems(info, EXPECTED) == ["speculative_num_steps is missing"]
    assert "no speculative_algorithm" in launched_config_problems({"version": "x"}, EXPECTED)[0]


def test_each_release_s_graph_limit_field_is_read() -> None:
    newest = _info()
    del newest["cuda_graph_config"]
    assert launched_config_problems(newest, EXPECTED) == []
    older = _info(version="0.4.6", cuda_graph_max_bs=32)
    del older["cuda_graph_config"], older["cuda_graph_max_bs_decode"]
    assert launched_config_problems(older, EXPECTED) == []
    del older["cuda_graph_max_bs"]
    assert launched_config_problems(older, EXPECTED) == [
        "the server info reports no CUDA-graph batch limit"
    ]


def test_baseline_that_speculates_is_a_problem() -> None:
    expected = ExpectedServer(None, max_running_requests=32, cuda_graph_max_bs=32)
    assert launched_config_problems(_info(speculative_algorithm=None), expected) == []
    assert "speculates" in launched_config_problems(_info(), expected)[0]


def test_server_average() -> None:
    assert server_avg_accept_length(_info()) == 2.6
    assert server_avg_accept_length({"internal_states": [{"avg_spec_accept_length": None}]}) is None
    assert server_avg_accept_length({}) is None


def test_tau_from_requests_agreeing_with_the_server() -> None:
    res = resolve_tau(2.55, 2.6, CONFIG)
    assert (res.tau, res.source, res.problems) == (2.55, TAU_PER_REQUEST, [])


def test_tau_far_from_the_server_average_is_flagged() -> None:
    res = resolve_tau(2.0, 2.6, CONFIG)
    assert (
        res.source == TAU_PER_REQUEST and "differs from the server's own average" in res.problems[0]
    )


def test_impossible_tau_is_flagged() -> None:
    res = resolve_tau(4.5, None, CONFIG)
    assert "outside 1 <= tau <= num_steps + 1 = 4" in res.problems[0]
    assert resolve_tau(0.5, None, CONFIG).problems


def test_fallback_to_server_average_is_labelled() -> None:
    res = resolve_tau(float("nan"), 2.6, CONFIG)
    assert (res.tau, res.source) == (2.6, TAU_SERVER_AVERAGE)
    assert "server's average" in res.problems[0]


def test_no_stats_at_all_is_unavailable_and_flagged() -> None:
    res = resolve_tau(float("nan"), None, CONFIG)
    assert math.isnan(res.tau) and res.source == TAU_UNAVAILABLE and res.problems


def test_baseline_has_no_tau() -> None:
    res = resolve_tau(float("nan"), None, None)
    assert math.isnan(res.tau) and res.problems == []


def test_auto_config_depends_on_the_version() -> None:
    assert auto_config_for("MiniMaxM2ForCausalLM", "0.5.23") == SpecConfig(3, 1, 4)
    assert auto_config_for("MiniMaxM2ForCausalLM", "0.5.23.post1") == SpecConfig(3, 1, 4)
    assert auto_config_for("MiniMaxM2ForCausalLM", "0.5.6") == SpecConfig(5, 4, 8)
    assert auto_config_for("MiniMaxM2ForCausalLM", None) == SpecConfig(3, 1, 4)
    assert auto_config_for("LlamaForCausalLM", "0.5.23") == SpecConfig(5, 4, 8)


def test_parse_version() -> None:
    assert parse_version("v0.5.6rc2") == (0, 5, 6)
    assert parse_version("0.4") == (0, 4, 0)
    assert parse_version("dev") is None
