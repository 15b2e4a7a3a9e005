"""Per-request summaries of chunk timings, so a run directory stays small.

A request of 256 tokens carries 255 inter-token latencies; kept raw, the default
quick-start sweep wrote 15.7 MB of them and a grid 259 MB, though nothing downstream
reads them raw: the trial's pooled ITL percentiles are computed from the records in
memory before they are stored, the report plots the trial percentiles, and the gate
compares per-request tau and tokens/s. So each stored record keeps its own ITL p50, p90
and p99 (what a per-request ITL plot needs) and drops the list unless the user asks for
it (``--keep-chunks``). Stored numbers are rounded to microseconds (3 decimals of a
millisecond; start times to the millisecond), far below the timer's real resolution,
absent optional fields are left out, and a server's accept length is left out when it
is exactly completion_tokens / spec_verify_ct (as SGLang computes it), which the
record already holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Per-request ITL fields written when the chunk list itself is dropped.
ITL_SUMMARY_FIELDS: tuple[tuple[str, float], ...] = (
    ("itl_ms_p50", 50.0),
    ("itl_ms_p90", 90.0),
    ("itl_ms_p99", 99.0),
)
#: Decimals kept for stored floats (milliseconds -> microseconds; seconds -> ms).
DECIMALS = 3


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile with linear interpolation (numpy's default method), so a
    stored per-request summary agrees with what numpy computes from the full list."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def itl_summary(itl_ms: Sequence[float]) -> dict[str, float]:
    """``{"itl_ms_p50": ..., "itl_ms_p90": ..., "itl_ms_p99": ...}``; empty without samples."""
    if not itl_ms:
        return {}
    return {name: percentile(itl_ms, q) for name, q in ITL_SUMMARY_FIELDS}


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, DECIMALS)
    return value


def compact_record(data: Mapping[str, Any], *, keep_chunks: bool = False) -> dict[str, Any]:
    """A stored record's dict: ITL summarised, chunk list dropped (unless kept), optional
    fields that are None left out, floats rounded.

    Idempotent: compacting a compacted record changes nothing, and an existing summary
    is kept when the list is already gone.
    """
    out: dict[str, Any] = {}
    itl = data.get("itl_ms") or []
    summary = itl_summary(itl) if itl else {}
    for key, value in data.items():
        if key == "itl_ms":
            if keep_chunks and itl:
                out[key] = [_rounded(v) for v in itl]
            continue
        if value is None:
            continue
        out[key] = _rounded(value)
    for key, value in summary.items():
        out[key] = _rounded(value)
    if _derivable_accept_length(out):
        del out["spec_accept_length"]
    return out


def _derivable_accept_length(data: Mapping[str, Any]) -> bool:
    accept = data.get("spec_accept_length")
    tokens = data.get("completion_tokens")
    verify = data.get("spec_verify_ct")
    if not isinstance(accept, float | int) or not isinstance(tokens, int):
        return False
    if not isinstance(verify, int) or verify <= 0:
        return False
    return bool(abs(float(accept) - tokens / verify) < 10 ** (-DECIMALS))


__all__ = ["DECIMALS", "ITL_SUMMARY_FIELDS", "compact_record", "itl_summary", "percentile"]
