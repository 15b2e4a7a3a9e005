"""Parsing ``--load``, ``--arrival``, ``--max-concurrency`` and ``--slo``: every bad value is
one BadInputError line naming the option."""

from __future__ import annotations

import pytest

from specbench.errors import BadInputError
from specbench.harness.loads import (
    ConcurrencyLoad,
    ConstantArrival,
    PoissonArrival,
    RateLoad,
    RateSweepPlan,
    parse_load,
)
from specbench.harness.slo import Objective, parse_objectives
from specbench.limits import MAX_CONCURRENCY, MAX_REQUEST_RATE


def test_concurrency_rate_and_sweep_loads_are_objects() -> None:
    assert parse_load("concurrency:1,8") == [ConcurrencyLoad(1), ConcurrencyLoad(8)]
    rates = parse_load("rate:0.5,2", arrival="constant", seed=4, max_concurrency=16)
    assert isinstance(rates, list) and all(isinstance(r, RateLoad) for r in rates)
    assert [r.to_dict() for r in rates] == [
        {"kind": "rate", "rate_per_s": v, "arrival": "constant", "seed": 4, "max_concurrency": 16}
        for v in (0.5, 2.0)
    ]
    assert rates[0].label == "0.5 req/s" and not rates[0].send_offsets_s(0)
    sweep = parse_load("sweep")
    assert isinstance(sweep, RateSweepPlan) and sweep.count == 10
    assert [load.rate_per_s for load in sweep.loads_up_to(8.0)][-1] == pytest.approx(8.0)
    assert isinstance(parse_load("sweep:4"), RateSweepPlan)


def test_arrivals_are_seeded_and_at_the_mean_rate() -> None:
    poisson = PoissonArrival().offsets_s(2001, 5.0, seed=1)
    assert poisson == PoissonArrival().offsets_s(2001, 5.0, seed=1)
    assert poisson[0] == 0.0 and poisson == sorted(poisson)
    assert 2000 / poisson[-1] == pytest.approx(5.0, rel=0.1)
    assert ConstantArrival().offsets_s(3, 2.0, seed=0) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("text", "kwargs", "needle"),
    [
        ("rate:-1", {}, "--load rate must be >="),
        ("rate:0", {}, "--load rate must be >="),
        (f"rate:{MAX_REQUEST_RATE * 10:g}", {}, "--load rate must be <="),
        ("rate:nan", {}, "not a finite number"),
        ("rate:", {}, "comma-separated"),
        ("rate:1,,2", {}, "comma-separated"),
        ("rate:fast", {}, "is not a number"),
        ("concurrency:1.5", {}, "not a whole number"),
        ("concurrency:0", {}, "--concurrency must be >="),
        ("burst:3", {}, "--load must be"),
        ("sweep:1", {}, "--sweep-rates must be >="),
        ("rate:1", {"arrival": "gamma"}, "--arrival must be one of"),
        ("rate:1", {"max_concurrency": MAX_CONCURRENCY + 1}, "--max-concurrency must be <="),
    ],
)
def test_bad_loads_are_one_line(text: str, kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_load(text, **kwargs)  # type: ignore[arg-type]
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_objectives_parse_with_units_in_their_names() -> None:
    assert parse_objectives("ttft_p99_ms=2000,tpot_p50_ms=50") == [
        Objective("ttft", 99, 2000.0),
        Objective("tpot", 50, 50.0),
    ]
    assert Objective("tpot", 99, 50.0).describe() == "p99 TPOT 50 ms"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("latency_p99_ms=5", "unknown latency 'latency'"),
        ("ttft_p95_ms=5", "unknown percentile p95"),
        ("ttft_p99=5", "is not METRIC_pPCT_ms=LIMIT"),
        ("ttft_p99_ms", "is not METRIC_pPCT_ms=LIMIT"),
        ("ttft_p99_ms=-3", "--slo must be >="),
        ("ttft_p99_ms=inf", "not a finite number"),
        ("ttft_p99_ms=1,ttft_p99_ms=2", "given twice"),
    ],
)
def test_bad_objectives_are_one_line(text: str, needle: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_objectives(text)
    assert needle in str(info.value) and "\n" not in str(info.value)
