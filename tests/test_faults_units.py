"""Unit tests of the fault-handling building blocks: bounds, safe text, output paths,
stream statistics."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.harness.stream_checks import as_count, as_rate, meta_problem
from specbench.limits import MAX_CONCURRENCY, MAX_NEW_TOKENS, check_bound, check_bounds
from specbench.outpaths import check_output_dir, check_output_file, os_error_reason
from specbench.safe_text import printable


# -- bounds --------------------------------------------------------------------------------
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


# -- safe text --------------------------------------------------------------------------------
def test_printable_escapes_terminal_control_sequences() -> None:
    hostile = b"\x1b]0;pwned\x07\x1b[2J\rHTTP/1.1 \x9b31m\xe2\x80\xaeevil\x00"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert "\x9b" not in shown and "\u202e" not in shown and "\x00" not in shown
    assert "\\x1b" in shown and "\\u202e" in shown
    assert shown.isprintable()


def test_printable_cuts_long_text_and_keeps_one_line() -> None:
    shown = printable("a\nb" * 1000, limit=20)
    assert "\n" not in shown
    assert shown.endswith("more characters)")
    assert len(shown) < 60


def test_printable_of_invalid_utf8_is_escaped() -> None:
    assert printable(b"ok \xff\xfe") == "ok \\xff\\xfe"


# -- output paths -----------------------------------------------------------------------------
def test_out_under_a_file_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInputError, match="is a file"):
        check_output_dir(blocker / "run")
    with pytest.raises(BadInputError, match="not a directory"):
        check_output_dir(blocker)
    with pytest.raises(BadInputError, match="is a file"):
        check_output_file(blocker / "report.html")


def test_forbidden_directory_is_bad_input() -> None:
    # sysfs refuses new directories to everyone, root included.
    with pytest.raises(BadInputError, match="cannot write there"):
        check_output_dir(Path("/sys/specbench-run"))
    with pytest.raises(BadInputError, match="cannot write there"):
        check_output_file(Path("/proc/specbench/report.html"))


def test_read_only_filesystem_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only mount needs privileges a test cannot count on: the errno the kernel
    # gives for one (EROFS) is injected where the directory is created.
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(BadInputError, match="read-only file system"):
        check_output_dir(tmp_path / "run")


def test_writable_directory_is_created_and_left_clean(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    check_output_dir(target)
    assert target.is_dir() and list(target.iterdir()) == []
    check_output_file(tmp_path / "c" / "report.html")
    assert (tmp_path / "c").is_dir()


def test_os_error_reason_is_locale_independent() -> None:
    assert os_error_reason(OSError(errno.EACCES, "Zugriff verweigert")) == "permission denied"


# -- stream statistics --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "meta",
    [
        {"completion_tokens": 10, "spec_verify_ct": math.nan},
        {"completion_tokens": math.inf},
        {"completion_tokens": -3},
        {"completion_tokens": "12"},
        {"completion_tokens": 2.5},
        {"prompt_tokens": True},
        {"completion_tokens": 10, "spec_accept_length": -1.0},
        {"completion_tokens": 10, "spec_accept_rate": math.nan},
        {"completion_tokens": 4, "spec_verify_ct": 9},
    ],
)
def test_impossible_meta_info_is_named(meta: dict[str, object]) -> None:
    problem = meta_problem(meta)
    assert problem is not None and problem.startswith("impossible meta_info")


def test_possible_meta_info_passes() -> None:
    assert (
        meta_problem({"completion_tokens": 12.0, "spec_verify_ct": 5, "prompt_tokens": 0}) is None
    )
    assert meta_problem({"completion_tokens": 3, "spec_verify_ct": None}) is None
    assert as_count(7.0) == 7 and as_count(-1) is None and as_rate(2) == 2.0


# -- chunk summaries ------------------------------------------------------------------------------
def test_itl_summary_matches_numpy_percentiles() -> None:
    import numpy as np

    from specbench.harness.chunk_summary import itl_summary

    samples = [float(x) for x in np.random.default_rng(3).gamma(2.0, 5.0, size=255)]
    summary = itl_summary(samples)
    expected = np.percentile(samples, (50, 90, 99))
    assert [summary["itl_ms_p50"], summary["itl_ms_p90"], summary["itl_ms_p99"]] == pytest.approx(
        list(expected)
    )
    assert itl_summary([]) == {}


def test_compact_record_drops_chunks_and_nulls_and_is_idempotent() -> None:
    from specbench.harness.chunk_summary import compact_record

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
