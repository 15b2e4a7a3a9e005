"""Launch terms every server of a sweep shares, and launches on another node."""

from __future__ import annotations

import dataclasses

import pytest

from specbench.errors import BadInputError
from specbench.harness.engine import Deployment
from specbench.harness.server_backend import ServerBackend
from specbench.harness.sglang import SGLANG
from specbench.model import load_target
from specbench.spec_config import SpecConfig

#: TEST-NET-3 (RFC 5737): never an address of this machine.
REMOTE_HOST = "203.0.113.7"


def _flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_baseline_and_speculative_servers_get_the_same_batch_limits() -> None:
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=32)
    for config in (None, SpecConfig(3, 4, 8)):
        args = SGLANG.launch_args(deployment, config, host="127.0.0.1", port=1)
        assert _flag(args, "--max-running-requests") == "32"
        assert _flag(args, "--cuda-graph-max-bs-decode") == "32"
        assert "--cuda-graph-max-bs" not in args
    _, line = SGLANG.launch_line(deployment, SpecConfig(3, 4, 8))
    assert "--max-running-requests 32 --cuda-graph-max-bs-decode 32" in line


def test_the_graph_batch_flag_is_spelled_for_the_release() -> None:
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=8)
    older = dataclasses.replace(deployment, engine_version="0.4.6")
    assert _flag(SGLANG.launch_args(older, None), "--cuda-graph-max-bs") == "8"
    assert "--cuda-graph-max-bs-decode" not in SGLANG.launch_args(older, None)
    newest = dataclasses.replace(deployment, engine_version="0.5.23.post1")
    assert _flag(SGLANG.launch_args(newest, None), "--cuda-graph-max-bs-decode") == "8"


def test_batch_limits_are_parsed_back_per_release() -> None:
    args = ["--max-running-requests", "8", "--cuda-graph-max-bs-decode", "8"]
    parsed = SGLANG.parse_launch_args(args)
    assert (parsed.max_running_requests, parsed.cuda_graph_max_bs) == (8, 8)
    older = SGLANG.parse_launch_args(["--cuda-graph-max-bs", "4"], version="0.4.6")
    assert older.cuda_graph_max_bs == 4


def test_the_older_graph_flag_is_refused_like_sglang_0_5_23_refuses_it() -> None:
    with pytest.raises(BadInputError, match="ambiguous option: --cuda-graph-max-bs"):
        SGLANG.parse_launch_args(["--cuda-graph-max-bs", "8"])


def test_config_problems_compare_algorithm_draft_and_batch() -> None:
    deployment = Deployment.of(load_target("minimax-m2.7"), max_batch=4)
    info = {
        "speculative_algorithm": "NGRAM",
        "speculative_draft_model_path": "someone/else",
        "speculative_num_steps": 3,
        "speculative_eagle_topk": 4,
        "speculative_num_draft_tokens": 8,
        "max_running_requests": 48,
        "cuda_graph_max_bs_decode": 4,
    }
    problems = SGLANG.config_problems(info, deployment, SpecConfig(3, 4, 8))
    assert [p.split(" ")[0] for p in problems] == [
        "speculative_algorithm",
        "speculative_draft_model_path",
        "max_running_requests",
    ]


def test_a_server_on_another_node_is_launched_there_without_local_port_checks() -> None:
    backend = ServerBackend(load_target("minimax-m2.7"), host=REMOTE_HOST, port=30000)
    assert backend._port() == 30000
    free = ServerBackend(load_target("minimax-m2.7"), host=REMOTE_HOST)
    assert 0 < free._port() < 65536
