"""The measurement window: steady-state throughput, stall flags, bootstrap intervals."""

from __future__ import annotations

import math

import pytest

from specbench.harness.window import (
    RequestSample,
    speedup_interval,
    stall_reasons,
    steady_throughput,
)


def _samples(n: int, latency_ms: float, tokens: int = 64, **extra: float) -> list[RequestSample]:
    return [
        RequestSample(f"p{i % 8}", tokens, latency_ms * (1 + (i % 3) / 1000), **extra)  # type: ignore[arg-type]
        for i in range(n)
    ]


def test_steady_throughput_is_concurrency_times_tokens_over_latency() -> None:
    samples = [RequestSample("a", 100, 1000.0), RequestSample("b", 100, 1000.0)]
    assert steady_throughput(samples, 4) == pytest.approx(400.0)
    assert math.isnan(steady_throughput([], 4))


def test_steady_throughput_ignores_gaps_between_requests() -> None:
    """The wall span would count a client that idles between requests; the sums do not."""
    samples = [RequestSample("a", 50, 500.0)] * 10
    assert steady_throughput(samples, 1) == pytest.approx(100.0)


def test_paired_interval_brackets_the_speedup_and_is_narrow() -> None:
    base = _samples(32, 1000.0)
    spec = _samples(32, 500.0)
    low, high = speedup_interval(spec, base)
    assert low <= 2.0 <= high
    assert high - low < 0.02


def test_interval_widens_with_noisy_requests() -> None:
    base = _samples(32, 1000.0)
    spec = [RequestSample(f"p{i % 8}", 64, 500.0 * (1.6 if i % 2 else 0.6)) for i in range(32)]
    low, high = speedup_interval(spec, base)
    assert high - low > 0.1


def test_unpaired_prompts_still_give_an_interval() -> None:
    base = [RequestSample(f"b{i}", 64, 1000.0 + i) for i in range(16)]
    spec = [RequestSample(f"s{i}", 64, 500.0 + i) for i in range(16)]
    low, high = speedup_interval(spec, base)
    assert low < 2.0 < high + 0.05


def test_interval_unknown_with_too_few_requests() -> None:
    low, high = speedup_interval([RequestSample("a", 1, 1.0)], _samples(4, 10.0))
    assert math.isnan(low) and math.isnan(high)


def test_no_stall_on_a_steady_load() -> None:
    samples = _samples(
        32, 1000.0, ttft_ms=20.0, connect_ms=0.5, max_gap_ms=12.0, median_gap_ms=10.0
    )
    assert stall_reasons(samples) == []


def test_ttft_tail_is_a_stall() -> None:
    samples = [*_samples(31, 1000.0, ttft_ms=20.0), RequestSample("x", 64, 2000.0, ttft_ms=1020.0)]
    (reason,) = stall_reasons(samples)
    assert reason.startswith("TTFT tail")


def test_slow_connection_is_a_stall() -> None:
    samples = [
        *_samples(8, 1000.0, connect_ms=1.0),
        RequestSample("x", 64, 1000.0, connect_ms=1003.0),
    ]
    (reason,) = stall_reasons(samples)
    assert "slow connections: 1" in reason


def test_gap_between_chunks_is_a_stall() -> None:
    samples = [
        *_samples(8, 1000.0, max_gap_ms=11.0, median_gap_ms=10.0),
        RequestSample("x", 64, 1500.0, max_gap_ms=600.0, median_gap_ms=10.0),
    ]
    (reason,) = stall_reasons(samples)
    assert reason.startswith("stream stalls: 1")
