"""tau with its source, and per-position acceptance, for one load."""

from __future__ import annotations

import pytest

from specbench.harness.acceptance_stats import (
    TAU_COUNTERS,
    TAU_NONE,
    TAU_PER_REQUEST,
    load_acceptance,
    position_rates_from_histogram,
)
from specbench.rundir.records import RequestRecord


def _record(steps: int | None, accepted: int | None, hist: list[int] | None) -> RequestRecord:
    return RequestRecord(
        prompt_id="p",
        domain="chat",
        prompt_tokens=1,
        completion_tokens=24,
        spec_verify_ct=steps,
        ttft_ms=1.0,
        e2e_ms=2.0,
        spec_accepted_tokens=accepted,
        spec_accept_histogram=hist,
    )


COUNTERS = {
    "drafts": 10.0,
    "draft_tokens": 30.0,
    "accepted": 20.0,
    "accepted_per_position": [9.0, 7.0, 4.0],
}


def test_per_request_wins_when_every_request_reported() -> None:
    records = [_record(6, 18, [0, 0, 0, 6]), _record(8, 10, [2, 2, 2, 2])]
    out = load_acceptance(records, COUNTERS)
    assert out["tau_source"] == TAU_PER_REQUEST
    assert out["tau"] == pytest.approx((6 + 18 + 8 + 10) / 14)
    assert out["counters"]["tau"] == pytest.approx(3.0)
    assert out["position_acceptance"] == pytest.approx([0.9, 0.7, 0.4])  # counters first
    assert out["histogram"] == [2, 2, 2, 8]


def test_counters_when_requests_did_not_report() -> None:
    out = load_acceptance([_record(None, None, None)], COUNTERS)
    assert (out["tau_source"], out["tau"]) == (TAU_COUNTERS, pytest.approx(3.0))


def test_neither_source_says_so() -> None:
    out = load_acceptance([_record(None, None, None)], None)
    assert (out["tau_source"], out["tau"]) == (TAU_NONE, None)


def test_position_rates_from_a_histogram() -> None:
    # 4 steps: accepted 0, 1, 3, 3 drafts of 3.
    assert position_rates_from_histogram([1, 1, 0, 2]) == pytest.approx([0.75, 0.5, 0.5])
    assert position_rates_from_histogram([]) == []
