"""Numbers a results file may hold: finite, and inside what a measurement can produce.

The sweep never writes NaN or infinity (``schema.dumps`` stores them as null) and never
stores a tau below 1 or a negative speed, so a results file that holds one was edited
by hand, cut and pasted, or written by another tool. ``report`` and ``gate`` would
otherwise draw it, or pass a gate on it, without a word: a NaN compares false with
every threshold. Refusing it, naming the file and the field, is the only honest answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from specbench.errors import FileFormatError

#: Accepted lower bound of each numeric field, by name, wherever it appears (a trial
#: row, ``best``, a recommendation); a list or mapping under one of these names (a
#: speedup interval, speedups by concurrency) holds values of the same kind.
#: tau_server is left out: it is the server's own claim, stored as received.
LOWER_BOUNDS: dict[str, float] = {
    **dict.fromkeys(("tau", "tau_p10", "tau_p50", "tau_p90", "predicted_tau", "tau_samples"), 1.0),
    **dict.fromkeys(
        (
            "speedup",
            "speedup_ci",
            "speedup_ci_low",
            "speedup_ci_high",
            "speedup_by_concurrency",
            "predicted_speedup",
            "output_tokens_per_s",
            "output_tokens_per_s_samples",
            "per_stream_tokens_per_s",
            "ttft_ms_p50",
            "ttft_ms_p90",
            "ttft_ms_p99",
            "itl_ms_p50",
            "itl_ms_p90",
            "itl_ms_p99",
            "e2e_ms_p50",
            "num_requests",
            "num_errors",
            "completion_tokens",
            "spec_verify_ct",
            "duration_s",
        ),
        0.0,
    ),
}

#: Slack under a tau bound: tau is a ratio of counts and may round just below 1.
_TAU_SLACK = 1e-9


#: A bound as (the field it comes from, the lowest value allowed).
Bound = tuple[str, float]


def _numbers(
    value: Any, where: str, bound: Bound | None
) -> Iterator[tuple[str, float, Bound | None]]:
    """Every float or int under ``value`` with its JSON path and the bound it must meet."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield where, float(value), bound
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            child = f"{where}.{name}" if where else name
            low = LOWER_BOUNDS.get(name)
            yield from _numbers(item, child, bound if low is None else (name, low))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{where}[{index}]", bound)


def impossible_value(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first field of ``data`` holding NaN, infinity or a value below its bound, as
    (JSON path, what is wrong with it); None when every number is possible."""
    for where, number, bound in _numbers(data, "", None):
        if not math.isfinite(number):
            return where, f"{number} is not a number a measurement can produce"
        if bound is None:
            continue
        name, low = bound
        if number < low - (_TAU_SLACK if low == 1.0 else 0.0):
            return where, f"{number:g} is impossible ({name} is at least {low:g})"
    return None


def check_values(path: object, data: Mapping[str, Any]) -> None:
    """Raise FileFormatError naming ``path`` and the field when a number is impossible."""
    found = impossible_value(data)
    if found is not None:
        field, problem = found
        raise FileFormatError(path, f"{problem}; the file was not written by a sweep", field=field)


__all__ = ["LOWER_BOUNDS", "check_values", "impossible_value"]
