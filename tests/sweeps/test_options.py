"""Sweep options are checked once, where they enter; the backends then trust them."""

from __future__ import annotations

import pytest

from specbench.errors import BadInputError
from specbench.limits import BOUNDS, MAX_CONCURRENCY, MAX_REPEATS
from specbench.sweeps.options import (
    OPTION_GROUPS,
    SweepOptions,
    check_load,
    check_options,
    check_search,
)


def test_endpoint_and_launch_cmd_conflict_is_refused_at_the_boundary() -> None:
    options = SweepOptions(
        endpoint="http://x:1", strategy="fixed", launch_cmd="srun {cmd}", backend="sglang"
    )
    with pytest.raises(BadInputError, match="drop --launch-cmd"):
        check_options(options)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"repeats": MAX_REPEATS + 1}, "--repeats must be <= 5"),
        ({"repeats": -1}, "--repeats must be >= 0"),
        ({"launch_time_estimate_s": 0.0}, "--launch-time-estimate must be >= "),
        ({"concurrencies": (1, MAX_CONCURRENCY + 1)}, "--concurrency must be <= "),
        ({"tp": 0}, "--tp must be >= 1"),
        ({"budget_minutes": 1e12}, "--budget-minutes must be <= "),
        ({"request_timeout_s": float("nan")}, "--request-timeout must be a finite number"),
        ({"sim_perturbation": -0.5}, "--sim-perturbation must be >= 0"),
        ({"storage_retry_s": -1.0}, "--storage-retry must be >= 0"),
    ],
)
def test_every_bound_comes_from_the_one_table(overrides: dict[str, object], needle: str) -> None:
    # A Python caller meets the CLI's bounds (specbench.limits), with the CLI's message.
    with pytest.raises(BadInputError, match=needle.replace("-", r"\-")):
        check_options(SweepOptions(backend="sim", **overrides))  # type: ignore[arg-type]


def test_repeats_has_one_maximum() -> None:
    assert BOUNDS["--repeats"].low == 0 and BOUNDS["--repeats"].high == MAX_REPEATS == 5
    for repeats in (0, MAX_REPEATS):
        check_options(SweepOptions(backend="sim", repeats=repeats))


def test_each_group_checks_its_own_options() -> None:
    assert [check.__name__ for check in OPTION_GROUPS] == [
        "check_search",
        "check_engine",
        "check_load",
        "check_workload",
        "check_output",
    ]
    # A group refuses only its own options: the load group passes a bad --trials.
    check_load(SweepOptions(trials=0))
    with pytest.raises(BadInputError, match="--trials"):
        check_search(SweepOptions(trials=0))
