"""Bounds on every size a user can type."""

from __future__ import annotations

import math

import pytest

from specbench.errors import BadInputError
from specbench.limits import MAX_CONCURRENCY, MAX_NEW_TOKENS, check_bound, check_bounds


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--concurrency", 1_000_000),
        ("--concurrency", 0),
        ("--max-new-tokens", 100_000_000),
        ("--num-prompts", 10**9),
        ("--trials", 0),
        ("--request-timeout", 0.0),
        ("--request-timeout", math.inf),
        ("--ready-timeout", math.nan),
        ("--port", 70000),
        ("--tp", 0),
        ("--time-scale", -1.0),
    ],
)
def test_out_of_range_values_are_one_line_bad_input(option: str, value: float) -> None:
    with pytest.raises(BadInputError) as info:
        check_bound(option, value)
    message = str(info.value)
    assert option in message and "\n" not in message


def test_values_inside_the_bounds_pass() -> None:
    check_bounds(
        {
            "--concurrency": MAX_CONCURRENCY,
            "--max-new-tokens": MAX_NEW_TOKENS,
            "--request-timeout": 600.0,
            "--port": 65535,
            "--trials": None,
        }
    )
