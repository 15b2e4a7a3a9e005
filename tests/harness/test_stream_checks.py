"""Impossible stream statistics are named."""

from __future__ import annotations

import math

import pytest

from specbench.harness.stream_checks import as_count, as_rate, meta_problem


@pytest.mark.parametrize(
    "meta",
    [
        {"completion_tokens": 10, "spec_verify_ct": math.nan},
        {"completion_tokens": math.inf},
        {"completion_tokens": -3},
        {"completion_tokens": "12"},
        {"completion_tokens": 2.5},
        {"prompt_tokens": True},
        {"completion_tokens": 10, "spec_accept_length": -1.0},
        {"completion_tokens": 10, "spec_accept_rate": math.nan},
        {"completion_tokens": 4, "spec_verify_ct": 9},
    ],
)
def test_impossible_meta_info_is_named(meta: dict[str, object]) -> None:
    problem = meta_problem(meta)
    assert problem is not None and problem.startswith("impossible meta_info")


def test_possible_meta_info_passes() -> None:
    assert (
        meta_problem({"completion_tokens": 12.0, "spec_verify_ct": 5, "prompt_tokens": 0}) is None
    )
    assert meta_problem({"completion_tokens": 3, "spec_verify_ct": None}) is None
    assert as_count(7.0) == 7 and as_count(-1) is None and as_rate(2) == 2.0
