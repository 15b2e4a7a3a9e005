"""The break-even load with its interval, and the loads it rests on.

A break-even interpolated between two loads is only as good as those two points. "About
7" from concurrency 1 (1.27x) and 8 (0.98x [0.95-1.01]) reads like a measurement, but
the second point is within noise of 1.0x: the crossing could as well lie at 8 or above.
So the crossing is computed three times on the same log-load line: through the two
speedups (the point), through their lower bounds (the earliest it can be) and through
their upper bounds (the latest). When the upper bound at the higher load still reaches
1.0x, the loads tested cannot place the upper end, and the text says so and names the
loads that would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Interval = tuple[float, float, float]  # speedup, low, high


def interpolate_crossing(low_c: int, low_speedup: float, high_c: int, high_speedup: float) -> float:
    """Concurrency where speedup crosses 1.0, linear in log(concurrency), clamped to the
    measured interval (never extrapolated). Throughput curves are roughly linear in log
    load, so between 8 and 32 this gives ~16 rather than the arithmetic 20."""
    if low_speedup == high_speedup:
        return float(high_c)
    frac = (low_speedup - 1.0) / (low_speedup - high_speedup)
    frac = min(max(frac, 0.0), 1.0)
    return float(math.exp(math.log(low_c) + frac * (math.log(high_c) - math.log(low_c))))


def format_load(value: float) -> str:
    """A concurrency as the texts show it: one decimal below 10 unless whole."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 or value >= 10 else f"{value:.1f}"


def _show(interval: Interval) -> str:
    speed, low, high = interval
    return f"{speed:.2f}x [{low:.2f}-{high:.2f}]"


@dataclass(frozen=True)
class BreakEven:
    """Where the pick's speedup crosses 1.0x between two measured loads."""

    point: float
    #: Earliest crossing (through the lower bounds).
    low: float
    #: Latest crossing (through the upper bounds); None when the higher load's interval
    #: still reaches 1.0x, so the crossing may lie at that load or above it.
    high: float | None
    low_load: int
    high_load: int
    low_speedup: Interval
    #: None when no tree completed at the higher load (only its baseline ran).
    high_speedup: Interval | None
    #: Loads between the two that would place it (powers of two), for the next sweep.
    suggested_loads: tuple[int, ...] = ()

    @property
    def located(self) -> bool:
        """True when both ends of the interval lie between the loads tested."""
        return self.high is not None

    def range_text(self) -> str:
        """``5 (4-7)`` or ``5.6-8+``: the short form for a headline or a plot label."""
        return range_text(self.point, self.low, self.high, self.high_load)

    def evidence(self) -> str:
        """The two loads and the pick's speedup at each."""
        high = "no tree completed" if self.high_speedup is None else _show(self.high_speedup)
        return f"concurrency {self.low_load}: {_show(self.low_speedup)}, {self.high_load}: {high}"

    def phrase(self) -> str:
        """The break-even as a sentence fragment that carries its interval and loads
        (the speedups themselves are in ``evidence``)."""
        loads = f"the loads tested, {self.low_load} and {self.high_load}"
        if self.high is not None:
            return (
                f"about {format_load(self.point)} concurrent requests ({format_load(self.low)}-"
                f"{format_load(self.high)} within the intervals, interpolated between {loads})"
            )
        more = (
            f"; add --concurrency {','.join(map(str, self.suggested_loads))} to place it"
            if self.suggested_loads
            else ""
        )
        why = (
            f"no tree completed at {self.high_load}"
            if self.high_speedup is None
            else f"at {self.high_load} the pick's {_show(self.high_speedup)} is within noise "
            "of 1.0x"
        )
        return (
            f"a break-even that {loads}, cannot locate: from about {format_load(self.low)} to "
            f"{self.high_load} or more concurrent requests ({why}{more})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.point,
            "low": self.low,
            "high": self.high,
            "located": self.located,
            "loads": [self.low_load, self.high_load],
            "speedup_at_loads": [
                list(self.low_speedup),
                None if self.high_speedup is None else list(self.high_speedup),
            ],
            "suggested_loads": list(self.suggested_loads),
        }


def range_text(point: float, low: float, high: float | None, high_load: int) -> str:
    """``5 (4-7)`` when located, ``5.6-8+`` when the upper end lies at the higher load
    tested or beyond it."""
    if high is None:
        return f"{format_load(low)}-{high_load}+"
    return f"{format_load(point)} ({format_load(low)}-{format_load(high)})"


def range_text_of(data: object) -> str | None:
    """:func:`range_text` of a results.json ``break_even_range``; None when absent or odd."""
    if not isinstance(data, dict):
        return None
    point, low, high, loads = (data.get(k) for k in ("concurrency", "low", "high", "loads"))
    numbers = (point, low) if high is None else (point, low, high)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        return None
    if not (isinstance(loads, list) and len(loads) == 2 and isinstance(loads[1], int)):
        return None
    return range_text(float(point), float(low), None if high is None else float(high), loads[1])  # type: ignore[arg-type]


def locate_break_even(
    low_load: int,
    low_speedup: Interval,
    high_load: int,
    high_speedup: Interval | None,
    measured: Sequence[int] = (),
) -> BreakEven:
    """The crossing between two measured loads with its interval; ``measured`` (every
    load of the run) makes the suggested ``--concurrency`` list complete. Without a
    speedup at the higher load the crossing is placed at the lower one, unlocated."""
    if high_speedup is None:
        point = earliest = float(low_load)
        latest = None
    else:
        point = interpolate_crossing(low_load, low_speedup[0], high_load, high_speedup[0])
        earliest = interpolate_crossing(low_load, low_speedup[1], high_load, high_speedup[1])
        latest = (
            interpolate_crossing(low_load, low_speedup[2], high_load, high_speedup[2])
            if high_speedup[2] < 1.0
            else None
        )
    between = []
    c = 2
    while c < high_load:
        if c > low_load:
            between.append(c)
        c *= 2
    suggested = tuple(sorted({*measured, low_load, high_load, *between})) if between else ()
    return BreakEven(
        point=point,
        low=min(earliest, point),
        high=None if latest is None else max(latest, point),
        low_load=low_load,
        high_load=high_load,
        low_speedup=low_speedup,
        high_speedup=high_speedup,
        suggested_loads=suggested,
    )


__all__ = [
    "BreakEven",
    "format_load",
    "interpolate_crossing",
    "locate_break_even",
    "range_text",
    "range_text_of",
]
