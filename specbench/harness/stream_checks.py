"""What makes a streamed answer trustworthy: a clean end and possible statistics.

A request is a success only when its stream ended the way SGLang ends one (a final
``data: [DONE]`` after the last chunk, see SGLang's http_server.py ``stream_results``)
and every counter it reports is a count that can exist. Anything else is a failed
request with a reason, never a success (a cut stream would count a short answer as a
fast one) and never a crash of the whole sweep (one server's NaN must not abort hours of
measurements): the request's error string says what was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from specbench.safe_text import printable

#: The error of a stream that stopped before ``data: [DONE]``.
NO_DONE = "the stream ended without data: [DONE] (cut short)"

#: meta_info counters that must be non-negative integers when present.
COUNT_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "spec_verify_ct")
#: meta_info values that must be finite non-negative numbers when present.
RATE_FIELDS = ("spec_accept_length", "spec_accept_rate")


def as_count(value: Any) -> int | None:
    """``value`` as a non-negative integer, or None when it is not one.

    JSON has no integer type of its own: ``3.0`` is accepted, ``3.5``, ``NaN`` (which
    Python's json module parses), infinities, negatives, booleans and strings are not.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


def as_rate(value: Any) -> float | None:
    """``value`` as a finite non-negative float, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def as_seconds(value: Any) -> float | None:
    """A number as a float, whatever its value (NaN and negatives included: a latency
    claim is checked against the client's clock, not dropped); None when not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def meta_problem(meta: Mapping[str, Any]) -> str | None:
    """Why this ``meta_info`` cannot be true, or None when it can.

    Checks each present counter's type and range, and that speculation accepted at least
    one token per verify step (``spec_verify_ct <= completion_tokens``: tau >= 1, the
    bonus token included).
    """
    for name in COUNT_FIELDS:
        if name in meta and meta[name] is not None and as_count(meta[name]) is None:
            return f"impossible meta_info.{name}: {printable(repr(meta[name]), 40)}"
    for name in RATE_FIELDS:
        if name in meta and meta[name] is not None and as_rate(meta[name]) is None:
            return f"impossible meta_info.{name}: {printable(repr(meta[name]), 40)}"
    verify = as_count(meta.get("spec_verify_ct"))
    tokens = as_count(meta.get("completion_tokens"))
    if verify is not None and tokens is not None and verify > tokens:
        return (
            f"impossible meta_info: spec_verify_ct {verify} > completion_tokens {tokens} "
            "(fewer than one token per verify step)"
        )
    return None


__all__ = [
    "COUNT_FIELDS",
    "NO_DONE",
    "RATE_FIELDS",
    "as_count",
    "as_rate",
    "as_seconds",
    "meta_problem",
]
