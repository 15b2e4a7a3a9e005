"""The engines' adaptive formats and their loader rules (specbench.harness.adaptive_config).

The rules are SGLang 0.5.23's (python/sglang/srt/speculative/adaptive_spec_params.py:
resolve_adaptive_strategy, _load_adaptive_config, adaptive_unsupported_reason) and
vLLM 0.32's (vllm/v1/spec_decode/dynamic/utils.py, validate_and_normalize_dynamic_sd_schedule,
for the table inside --speculative-config, vllm/config/speculative.py); each is shown
to refuse a config broken in exactly its way, and to accept the good one.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import replace
from typing import Any

import pytest

from specbench.errors import BadInputError
from specbench.harness.adaptive_config import (
    SGLANG_ADAPTIVE,
    SGLANG_DEFAULT_CONFIG,
    VLLM_ADAPTIVE,
    VLLM_TABLE_KEY,
)
from specbench.harness.engine import Deployment
from specbench.harness.engines import create
from specbench.verdict.adaptive_tiers import AdaptiveTier

TIERS = (
    AdaptiveTier(1, (2, 3, 5), 3, 1),
    AdaptiveTier(8, (1, 2), 2, 8),
    AdaptiveTier(32, (0,), 0, 32),
)
DEPLOYMENT = Deployment(model_path="m", draft_model_path="d", algorithm="EAGLE3", tp=4)
GOOD_SGLANG: dict[str, Any] = {
    "1": {"candidate_steps": [1, 3, 5, 7], "up_hysteresis": 0.0},
    "8": {"candidate_steps": [0, 1, 3]},
    "ema_alpha": 0.2,
}
GOOD_VLLM: dict[str, Any] = {
    "method": "eagle3",
    "num_speculative_tokens": 3,
    VLLM_TABLE_KEY: [[1, 1, 3], [2, 7, 1], [8, 64, 0]],
}


def broken(good: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """``good`` with the item at ``path`` set to ``value`` (deleted when value is ...)."""
    out = copy.deepcopy(good)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def test_sglang_accepts_its_own_default_and_a_valid_file() -> None:
    assert SGLANG_ADAPTIVE.problem(SGLANG_DEFAULT_CONFIG) is None
    assert SGLANG_ADAPTIVE.problem(GOOD_SGLANG) is None


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ([{"candidate_steps": [1]}], "JSON object"),
        (broken(GOOD_SGLANG, ("strategy",), "greedy"), "'strategy'"),
        (broken(GOOD_SGLANG, ("1.5",), {"candidate_steps": [1]}), "neither a batch size"),
        (broken(GOOD_SGLANG, ("-8",), {"candidate_steps": [1]}), "neither a batch size"),
        (broken(GOOD_SGLANG, ("8",), [0, 1]), "expected an object"),
        (broken(GOOD_SGLANG, ("8", "candidate_steps"), ...), "candidate_steps must be"),
        (broken(GOOD_SGLANG, ("8", "candidate_steps"), []), "candidate_steps must be"),
        (broken(GOOD_SGLANG, ("8", "candidate_steps"), [0, -1]), "non-negative"),
        (broken(GOOD_SGLANG, ("8", "candidate_steps"), [0, 1.5]), "non-negative integers"),
        (broken(GOOD_SGLANG, ("8", "candidate_steps"), "0,1"), "non-empty list"),
        ({"ema_alpha": 0.2}, "no batch-size key"),
    ],
)
def test_sglang_refuses_each_rule_broken(body: object, rule: str) -> None:
    reason = SGLANG_ADAPTIVE.problem(body)
    assert reason is not None and rule in reason
    with pytest.raises(BadInputError, match="sglang would refuse"):
        SGLANG_ADAPTIVE.check(body, "cfg.json")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"algorithm": "NGRAM"}, "EAGLE or EAGLE3 only"),
        ({"algorithm": "STANDALONE"}, "EAGLE or EAGLE3 only"),
        ({"extra_args": ("--enable-dp-attention",)}, "attention DP"),
        ({"extra_args": ("--enable-two-batch-overlap",)}, "two-batch overlap"),
    ],
)
def test_sglang_refuses_adaptive_where_the_server_cannot_run_it(
    change: dict[str, Any], rule: str
) -> None:
    with pytest.raises(BadInputError, match=rule):
        SGLANG_ADAPTIVE.build(create("sglang"), replace(DEPLOYMENT, **change), TIERS, "a.json")


def test_sglang_export_is_a_topk1_chain_line_with_the_adaptive_flags() -> None:
    body, line = SGLANG_ADAPTIVE.build(create("sglang"), DEPLOYMENT, TIERS, "/r/a.json")
    assert body["1"]["candidate_steps"] == [2, 3, 5]
    assert body["32"]["candidate_steps"] == [0]
    assert SGLANG_ADAPTIVE.problem(body) is None
    argv = shlex.split(line)
    assert argv[argv.index("--speculative-eagle-topk") + 1] == "1"
    assert argv[argv.index("--speculative-num-steps") + 1] == "3"  # the first tier's pick
    assert argv[argv.index("--speculative-num-draft-tokens") + 1] == "4"
    assert argv[-3:] == ["--speculative-adaptive", "--speculative-adaptive-config", "/r/a.json"]


def test_vllm_accepts_a_valid_table() -> None:
    assert VLLM_ADAPTIVE.problem(GOOD_VLLM) is None


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ("[[1, 1, 3]]", "JSON object"),
        (broken(GOOD_VLLM, ("num_speculative_tokens",), 0), "above 0"),
        (broken(GOOD_VLLM, ("num_speculative_tokens",), ...), "above 0"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY,), []), "non-empty list"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [2, 7]), "not [start, end, k]"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [2, 7.5, 1]), "in integers"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [2, "7", 1]), "in integers"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 0), [0, 1, 3]), "must be positive"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [7, 2, 1]), "starts after it ends"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [2, 7, -1]), "k must be >= 0"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [2, 7, 4]), "above num_speculative_tokens 3"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 1), [1, 7, 1]), "overlap"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 2), [6, 64, 0]), "overlap"),
        (broken(GOOD_VLLM, (VLLM_TABLE_KEY, 0), [2, 7, 1]), "overlap or repeat"),
        ({**GOOD_VLLM, VLLM_TABLE_KEY: [[2, 7, 1], [8, 64, 0]]}, "must start at 1"),
    ],
)
def test_vllm_refuses_each_rule_broken(body: object, rule: str) -> None:
    reason = VLLM_ADAPTIVE.problem(body)
    assert reason is not None and rule in reason
    with pytest.raises(BadInputError, match="vllm would refuse"):
        VLLM_ADAPTIVE.check(body, "spec.json")


def test_vllm_export_is_the_engine_line_with_the_table_inline() -> None:
    deployment = replace(DEPLOYMENT, max_batch=64)
    body, line = VLLM_ADAPTIVE.build(create("vllm"), deployment, TIERS, "/r/v.json")
    # Each tier's pick up to the next tier; k = the longest pick caps them all.
    assert body[VLLM_TABLE_KEY] == [[1, 7, 3], [8, 31, 2], [32, 64, 0]]
    assert body["num_speculative_tokens"] == 3
    assert body["method"] == "eagle3" and body["model"] == "d"
    assert VLLM_ADAPTIVE.problem(body) is None
    argv = shlex.split(line)
    assert json.loads(argv[argv.index("--speculative-config") + 1]) == body


def test_vllm_table_merges_neighbours_that_run_the_same_k() -> None:
    tiers = (
        AdaptiveTier(1, (2,), 2, 1),
        AdaptiveTier(8, (2, 3), 2, 8),
        AdaptiveTier(32, (0,), 0, 32),
    )
    assert VLLM_ADAPTIVE.table(tiers, DEPLOYMENT) == [[1, 31, 2], [32, 1024, 0]]


def test_every_engine_with_an_adaptive_format_is_offered_by_export() -> None:
    from specbench.cli.export import ENGINES
    from specbench.harness.engines import BUILT_IN

    with_format = {
        name
        for name in BUILT_IN
        if create(name).adaptive is not None and create(name).adaptive.engine == name
    }
    assert with_format == set(ENGINES)
