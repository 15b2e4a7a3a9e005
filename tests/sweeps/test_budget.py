"""GPU time: the wall-time estimate and CI-based pruning."""

from __future__ import annotations

import math

import pytest

from specbench.sweeps.budget import (
    Interval,
    LoadCost,
    estimate_wall_time,
    format_duration,
    prune_reason,
)


def test_wall_time_is_servers_times_launch_plus_measure() -> None:
    loads = [LoadCost(1, 16, 256, 64.0), LoadCost(8, 16, 256, 32.0, warmup_requests=8)]
    est = estimate_wall_time(10, loads, launch_s=300.0)
    assert est.measure_s == pytest.approx(16 * 4.0 + 3 * 8.0)
    assert est.total_s == pytest.approx(11 * (300.0 + 88.0))
    assert "11 servers (10 trials + baseline)" in est.describe()
    assert "5.0 min launch (estimate)" in est.describe()


def test_unknown_pace_gives_unknown_time() -> None:
    est = estimate_wall_time(1, [LoadCost(1, 1, 1, 0.0)])
    assert math.isnan(est.total_s) and "unknown" in est.describe()


def test_format_duration() -> None:
    assert format_duration(42) == "42 s"
    assert format_duration(450) == "7.5 min"
    assert format_duration(3 * 3600) == "3.0 h"


def test_prune_only_when_clearly_worse() -> None:
    best = {"3-4-8": Interval(2.0, 1.9, 2.1), "2-1-3": Interval(1.5, 1.4, 1.6)}
    reason = prune_reason(Interval(1.2, 1.1, 1.3), best, 1)
    assert reason is not None and "clearly below 3-4-8" in reason
    # Overlapping intervals: noise could explain the difference, keep measuring.
    assert prune_reason(Interval(1.85, 1.7, 1.95), best, 1) is None
    assert prune_reason(Interval(1.2, math.nan, math.nan), best, 1) is None
    assert prune_reason(Interval(1.2, 1.1, 1.3), {}, 1) is None


def test_estimate_after_the_baseline_counts_only_the_trials() -> None:
    est = estimate_wall_time(4, [LoadCost(1, 4, 10, 10.0)], launch_s=60.0, with_baseline=False)
    assert est.servers == 4
    assert est.total_s == pytest.approx(4 * (60.0 + 4.0))
    assert "4 servers (4 trials)" in est.describe()
