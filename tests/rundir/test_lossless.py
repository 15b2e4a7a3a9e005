"""The losslessness check: speculative outputs against the baseline's, like for like."""

from __future__ import annotations

import hashlib

from specbench.rundir.lossless import describe_losslessness, losslessness
from specbench.rundir.records import RequestRecord


def _record(key: str, prompt: str, text: str, concurrency: int = 1) -> RequestRecord:
    return RequestRecord(
        prompt_id=prompt,
        domain="chat",
        prompt_tokens=1,
        completion_tokens=4,
        spec_verify_ct=None,
        ttft_ms=1.0,
        e2e_ms=2.0,
        config_key=key,
        concurrency=concurrency,
        output_sha256=hashlib.sha256(text.encode()).hexdigest(),
        output_head=text,
    )


def test_equal_outputs_pass() -> None:
    records = [
        _record("baseline", "a", "1 2 3"),
        _record("3-1-4", "a", "1 2 3"),
        _record("2-1-3", "a", "1 2 3"),
    ]
    summary = losslessness(records)
    assert (summary["checked"], summary["matched"], summary["passed"]) == (2, 2, True)
    assert summary["first_divergence"] is None
    assert "2/2" in describe_losslessness(summary)


def test_a_mismatch_is_reported_with_its_first_divergence() -> None:
    records = [
        _record("baseline", "a", "1 2 3 4"),
        _record("3-1-4", "a", "1 2 9 4"),
        _record("3-1-4", "b", "x"),  # no baseline for b: not compared
    ]
    summary = losslessness(records)
    assert (summary["checked"], summary["mismatched"], summary["passed"]) == (1, 1, False)
    first = summary["first_divergence"]
    assert first["prompt_id"] == "a" and first["char_index"] == 4
    assert "MISMATCH" in describe_losslessness(summary)


def test_only_the_same_concurrency_is_compared() -> None:
    records = [_record("baseline", "a", "same", 1), _record("3-1-4", "a", "other", 4)]
    summary = losslessness(records)
    assert summary["checked"] == 0 and summary["passed"] is None
    assert "not checked" in describe_losslessness(summary)


def test_each_method_is_checked_on_its_own() -> None:
    records = [
        _record("baseline", "a", "1 2 3"),
        _record("3-1-4", "a", "1 2 3"),
        _record("ngram-3-1-4", "a", "1 2 4"),
    ]
    summary = losslessness(records, methods={"3-1-4": "eagle3", "ngram-3-1-4": "ngram"})
    assert summary["by_method"] == {
        "eagle3": {"checked": 1, "matched": 1, "passed": True},
        "ngram": {"checked": 1, "matched": 0, "passed": False},
    }
