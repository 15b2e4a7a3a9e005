"""Request records: round trip, derived metrics, hand-edited files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from specbench.errors import FileFormatError
from specbench.rundir.records import RequestRecord, read_records, write_records


def test_records_round_trip_and_derived_metrics(tmp_path: Path) -> None:
    record = RequestRecord(
        prompt_id="p1",
        domain="code",
        prompt_tokens=10,
        completion_tokens=101,
        spec_verify_ct=40,
        ttft_ms=50.0,
        e2e_ms=1050.0,
        itl_ms=[10.0, 0.0],
    )
    assert record.tau == pytest.approx(101 / 40)
    assert record.output_tokens_per_s == pytest.approx(100.0)
    baseline = RequestRecord("p2", "chat", 10, 5, None, 1.0, 2.0)
    failed = RequestRecord("p3", "math", 10, 0, None, None, None, error="timeout")
    assert baseline.tau is None and failed.tau is None and failed.output_tokens_per_s is None
    # 21 tokens came with the first chunk: only the other 80 were decoded after TTFT.
    bunched = dataclasses.replace(record, first_chunk_tokens=21)
    assert bunched.output_tokens_per_s == pytest.approx(80.0)
    all_at_once = dataclasses.replace(record, first_chunk_tokens=101)
    assert all_at_once.output_tokens_per_s is None
    assert "first_chunk_tokens" not in record.to_dict()
    # 100 tokens 5 ms after the first: released at once, not decoded at 20,000 tok/s.
    burst = dataclasses.replace(record, e2e_ms=55.0)
    assert burst.output_tokens_per_s is None
    path = tmp_path / "requests.jsonl"
    write_records(path, [record])
    write_records(path, [baseline, failed, bunched])
    assert read_records(path) == [record, baseline, failed, bunched]
    path.write_text(path.read_text() + '{"prompt_id": "torn"\n')
    with pytest.raises(FileFormatError, match="line 6 is not JSON"):
        read_records(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spec_verify_ct", "40"),
        ("e2e_ms", [1]),
        ("concurrency", None),
        ("itl_ms", ["x"]),
        ("completion_tokens", True),
        ("config_key", 3),
    ],
)
def test_hand_edited_record_names_the_field(field: str, value: object) -> None:
    good = RequestRecord("p1", "code", 10, 20, 8, 5.0, 100.0).to_dict()
    assert RequestRecord.from_dict(good) == RequestRecord("p1", "code", 10, 20, 8, 5.0, 100.0)
    with pytest.raises(FileFormatError, match=f"'{field}'"):
        RequestRecord.from_dict({**good, field: value}, path="requests.jsonl:3")
