"""Per-request ITL summaries and compact records."""

from __future__ import annotations

import pytest


def test_itl_summary_matches_numpy_percentiles() -> None:
    import numpy as np

    from specbench.rundir.chunk_summary import itl_summary

    samples = [float(x) for x in np.random.default_rng(3).gamma(2.0, 5.0, size=255)]
    summary = itl_summary(samples)
    expected = np.percentile(samples, (50, 90, 99))
    assert [summary["itl_ms_p50"], summary["itl_ms_p90"], summary["itl_ms_p99"]] == pytest.approx(
        list(expected)
    )
    assert itl_summary([]) == {}


def test_compact_record_drops_chunks_and_nulls_and_is_idempotent() -> None:
    from specbench.rundir.chunk_summary import compact_record

    raw = {
        "prompt_id": "chat-00",
        "completion_tokens": 4,
        "spec_verify_ct": None,
        "ttft_ms": 12.3456789,
        "itl_ms": [1.0, 2.0, 3.0],
        "error": None,
    }
    compact = compact_record(raw)
    assert "itl_ms" not in compact and "spec_verify_ct" not in compact and "error" not in compact
    assert compact["ttft_ms"] == 12.346 and compact["itl_ms_p50"] == 2.0
    assert compact_record(compact) == compact
    kept = compact_record(raw, keep_chunks=True)
    assert kept["itl_ms"] == [1.0, 2.0, 3.0] and kept["itl_ms_p99"] == pytest.approx(2.98)


def test_a_derivable_accept_length_is_not_stored_twice() -> None:
    from specbench.rundir.chunk_summary import compact_record

    derived = {"completion_tokens": 10, "spec_verify_ct": 4, "spec_accept_length": 2.5}
    assert "spec_accept_length" not in compact_record(derived)
    reported = {"completion_tokens": 10, "spec_verify_ct": 4, "spec_accept_length": 2.7}
    assert compact_record(reported)["spec_accept_length"] == 2.7
