"""summarize(): exact numbers on hand-made records, older SGLang, failures, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specbench.harness.metrics import ConfigMetrics, summarize
from specbench.rundir.layout import TRIAL_COLUMNS
from specbench.rundir.records import RequestRecord


def rec(
    tokens: int,
    verify: int | None,
    *,
    start: float | None,
    ttft: float,
    e2e: float,
    itl: list[float] | None = None,
    error: str | None = None,
    accept: float | None = None,
    concurrency: int = 2,
) -> RequestRecord:
    return RequestRecord(
        prompt_id="p",
        domain="chat",
        prompt_tokens=10,
        completion_tokens=tokens,
        spec_verify_ct=verify,
        ttft_ms=ttft,
        e2e_ms=e2e,
        itl_ms=itl or [],
        spec_accept_length=accept,
        error=error,
        concurrency=concurrency,
        started_at=start,
    )


def speculative_records() -> list[RequestRecord]:
    return [
        # tau 2.0, stream speed (100 - 1) / 0.99 s = 100 tok/s
        rec(100, 50, start=0.0, ttft=10.0, e2e=1000.0, itl=[10.0, 20.0]),
        # tau 4.0, stream speed (200 - 1) / 1.99 s = 100 tok/s
        rec(200, 50, start=0.5, ttft=10.0, e2e=2000.0, itl=[30.0]),
        # tau 3.05, stream speed (61 - 1) / 0.6 s = 100 tok/s
        rec(61, 20, start=1.0, ttft=20.0, e2e=620.0, itl=[40.0]),
    ]


def test_exact_numbers_for_hand_made_records() -> None:
    m = summarize(speculative_records())
    assert m.tau == pytest.approx(361 / 120)
    assert m.tau_p50 == pytest.approx(3.05)
    assert m.tau_p10 == pytest.approx(np.percentile([2.0, 4.0, 61 / 20], 10))
    assert m.tau_p90 == pytest.approx(np.percentile([2.0, 4.0, 61 / 20], 90))
    # steady state of the closed loop: c * sum(tokens) / sum(latency) = 2 * 361 / 3.62 s
    assert m.output_tokens_per_s == pytest.approx(2 * 361 / 3.62)
    assert m.per_stream_tokens_per_s == pytest.approx(100.0)
    assert m.ttft_ms_p50 == pytest.approx(10.0)
    assert m.ttft_ms_p99 == pytest.approx(np.percentile([10.0, 10.0, 20.0], 99))
    assert m.itl_ms_p50 == pytest.approx(25.0)  # pooled [10, 20, 30, 40]
    assert m.itl_ms_p90 == pytest.approx(np.percentile([10, 20, 30, 40], 90))
    assert m.e2e_ms_p50 == pytest.approx(1000.0)
    assert (m.num_requests, m.num_errors) == (3, 0)
    assert (m.completion_tokens, m.spec_verify_ct) == (361, 120)
    assert m.concurrency == 2
    assert math.isnan(m.speedup)
    # three requests are too few to trust, even with identical stream speeds
    assert m.noisy and "only 3 successful requests" in m.noise_reason


def test_speedup_against_baseline_and_baseline_has_nan_tau() -> None:
    base_records = [
        rec(100, None, start=0.0, ttft=10.0, e2e=2000.0),
        rec(100, None, start=0.0, ttft=10.0, e2e=2000.0),
        rec(100, None, start=2.0, ttft=10.0, e2e=2000.0),
    ]
    base = summarize(base_records)
    assert math.isnan(base.tau) and math.isnan(base.tau_p50)
    assert base.spec_verify_ct is None
    assert base.output_tokens_per_s == pytest.approx(2 * 300 / 6.0)
    spec = summarize(speculative_records(), baseline=base)
    assert spec.speedup == pytest.approx((2 * 361 / 3.62) / (2 * 300 / 6.0))
    other = summarize([rec(10, 5, start=0.0, ttft=1.0, e2e=10.0, concurrency=8)])
    with pytest.raises(ValueError, match="concurrency"):
        summarize(speculative_records(), baseline=other)


def test_server_latency_and_connection_time_stay_out_of_the_window() -> None:
    slow_connect = [rec(100, 50, start=0.0, ttft=1010.0, e2e=2000.0) for _ in range(6)]
    for record in slow_connect:
        record.connect_ms = 1000.0  # a SYN retried after a full accept queue
    assert summarize(slow_connect).output_tokens_per_s == pytest.approx(2 * 600 / 6.0)
    assert "slow connections: 6" in summarize(slow_connect).noise_reason
    served = [rec(100, 50, start=0.0, ttft=10.0, e2e=1500.0) for _ in range(6)]
    for record in served:
        record.server_e2e_ms = 1000.0  # the client read the stream late
    assert summarize(served).output_tokens_per_s == pytest.approx(2 * 600 / 6.0)


def test_older_sglang_records_with_only_verify_count() -> None:
    records = [rec(90, 30, start=None, ttft=5.0, e2e=1000.0) for _ in range(6)]
    m = summarize(records)
    assert m.tau == pytest.approx(3.0)
    # c * sum(tokens) / sum(latency) = 2 * 540 / 6 s
    assert m.output_tokens_per_s == pytest.approx(2 * 540 / 6.0)
    assert not m.noisy and m.noise_reason == ""


def test_accept_length_only_records_fall_back_to_it() -> None:
    records = [rec(90, None, accept=3.0, start=0.0, ttft=5.0, e2e=1000.0) for _ in range(5)]
    assert summarize(records).tau == pytest.approx(3.0)


def test_failed_requests_are_counted_not_summarised() -> None:
    records = [*speculative_records(), rec(0, None, start=0.2, ttft=0.0, e2e=5.0, error="boom")]
    m = summarize(records)
    assert (m.num_requests, m.num_errors) == (4, 1)
    assert m.tau == pytest.approx(361 / 120)
    assert m.completion_tokens == 361


def test_all_failed_gives_nan_metrics_not_a_crash() -> None:
    records = [
        RequestRecord("p", "chat", 10, 0, None, None, None, error="connection refused"),
        rec(0, None, start=1.0, ttft=0.0, e2e=3.0, error="timeout"),
    ]
    m = summarize(records)
    for name in (
        "tau",
        "output_tokens_per_s",
        "per_stream_tokens_per_s",
        "ttft_ms_p50",
        "itl_ms_p99",
    ):
        assert math.isnan(getattr(m, name)), name
    assert (m.num_requests, m.num_errors, m.completion_tokens) == (2, 2, 0)
    assert m.noisy and "only 0 successful" in m.noise_reason
    empty = summarize([])
    assert empty.num_requests == 0 and math.isnan(empty.tau)
    baseline = summarize(speculative_records())
    assert math.isnan(summarize(records, baseline=baseline).speedup)


def test_noise_flag_on_wide_per_stream_spread() -> None:
    # five streams at 100 tok/s and one at 20 tok/s: CV well above 0.25
    records = [rec(100, 50, start=i * 0.1, ttft=10.0, e2e=1000.0) for i in range(5)]
    records.append(rec(21, 10, start=0.0, ttft=0.0, e2e=1000.0))
    m = summarize(records)
    assert m.noisy
    assert "coefficient of variation" in m.noise_reason
    calm = summarize(records[:5])
    assert not calm.noisy


def test_as_row_keys_are_trial_columns() -> None:
    row = summarize(speculative_records()).as_row()
    assert set(row) <= set(TRIAL_COLUMNS)
    assert {"tau", "speedup", "noisy", "concurrency", "itl_ms_p99", "spec_verify_ct"} <= set(row)
    fields = set(ConfigMetrics.__dataclass_fields__)
    assert set(row) == fields


def test_mixed_concurrencies_are_refused() -> None:
    records = [*speculative_records(), rec(1, 1, start=0.0, ttft=1.0, e2e=2.0, concurrency=4)]
    with pytest.raises(ValueError, match="one concurrency"):
        summarize(records)
