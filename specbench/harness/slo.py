"""Latency objectives (``--slo ttft_p99_ms=2000,tpot_p99_ms=50``) and goodput.

An objective names a latency (ttft, tpot, itl, e2e), a percentile (p50, p90, p99) and a
limit in milliseconds. A load *meets* it when that percentile over its requests is at
most the limit. A *request* meets it when its own value is: its TTFT, TPOT or end-to-end
latency, or for ITL its own gaps at that percentile.

Goodput is vllm bench serve's definition (vllm/benchmarks/serve.py, calculate_metrics:
a request is good when every configured metric is within its objective, and
request_goodput = good requests / benchmark duration): requests per second that met
every objective. TPOT is (e2e - TTFT) / (output tokens - 1), taken as 0 for a
one-token answer there too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from specbench.errors import BadInputError
from specbench.limits import check_bound
from specbench.rundir.records import RequestRecord

#: The percentiles an objective may name.
PERCENTILES = (50, 90, 99)


def request_tpot_ms(record: RequestRecord) -> float | None:
    """Time per output token after the first: (e2e - TTFT) / (output tokens - 1)."""
    if record.error is not None or record.e2e_ms is None or record.ttft_ms is None:
        return None
    if record.completion_tokens <= 1:
        return 0.0
    return (record.e2e_ms - record.ttft_ms) / (record.completion_tokens - 1)


def _request_itl_ms(record: RequestRecord, percentile: int) -> float | None:
    if record.error is not None:
        return None
    stored = getattr(record, f"itl_ms_p{percentile}", None)
    if isinstance(stored, float):
        return stored
    if not record.itl_ms:
        return 0.0
    return float(np.percentile(record.itl_ms, percentile))


#: Per-request value of each latency an objective may name, in ms (None: not measured).
RequestValue = Callable[[RequestRecord, int], "float | None"]
METRICS: dict[str, RequestValue] = {
    "ttft": lambda r, _p: None if r.error is not None else r.ttft_ms,
    "tpot": lambda r, _p: request_tpot_ms(r),
    "itl": _request_itl_ms,
    "e2e": lambda r, _p: None if r.error is not None else r.e2e_ms,
}


@dataclass(frozen=True)
class Objective:
    """One latency objective: ``metric`` at ``percentile`` within ``limit_ms``."""

    metric: str
    percentile: int
    limit_ms: float

    @property
    def name(self) -> str:
        """The objective's name as the user typed it (``tpot_p99_ms``)."""
        return f"{self.metric}_p{self.percentile}_ms"

    def describe(self) -> str:
        """How the report and the console say it: "p99 TPOT 50 ms"."""
        return f"p{self.percentile} {self.metric.upper()} {self.limit_ms:g} ms"

    def request_value(self, record: RequestRecord) -> float | None:
        return METRICS[self.metric](record, self.percentile)

    def request_meets(self, record: RequestRecord) -> bool:
        value = self.request_value(record)
        return value is not None and value <= self.limit_ms

    def load_value(self, records: Sequence[RequestRecord]) -> float | None:
        """The objective's percentile over the load's requests (None: none finished)."""
        values = [v for r in records if (v := self.request_value(r)) is not None]
        return float(np.percentile(values, self.percentile)) if values else None


def parse_objectives(text: str) -> list[Objective]:
    """``ttft_p99_ms=2000,tpot_p99_ms=50``; one BadInputError line for anything else."""
    objectives: list[Objective] = []
    for part in (p.strip() for p in text.split(",")):
        name, eq, limit_text = part.partition("=")
        pieces = name.strip().split("_")
        if not eq or len(pieces) != 3 or pieces[2] != "ms" or not pieces[1].startswith("p"):
            raise BadInputError(
                f"--slo: {part!r} is not METRIC_pPCT_ms=LIMIT (e.g. tpot_p99_ms=50)"
            )
        metric, pct_text = pieces[0], pieces[1][1:]
        if metric not in METRICS:
            raise BadInputError(
                f"--slo: unknown latency {metric!r} in {name!r}; one of {', '.join(METRICS)}"
            )
        if pct_text not in {str(p) for p in PERCENTILES}:
            raise BadInputError(
                f"--slo: unknown percentile p{pct_text} in {name!r}; "
                f"one of {', '.join(f'p{p}' for p in PERCENTILES)}"
            )
        try:
            limit = float(limit_text)
        except ValueError:
            raise BadInputError(f"--slo: {limit_text!r} in {part!r} is not a number") from None
        if not math.isfinite(limit):
            raise BadInputError(f"--slo: {limit_text!r} in {part!r} is not a finite number")
        check_bound("--slo", limit)
        objective = Objective(metric, int(pct_text), limit)
        if any(o.name == objective.name for o in objectives):
            raise BadInputError(f"--slo: {objective.name} given twice")
        objectives.append(objective)
    return objectives


def good_requests(records: Sequence[RequestRecord], objectives: Sequence[Objective]) -> int:
    """Finished requests that met every objective (vllm bench serve's good_completed)."""
    return sum(
        1 for r in records if r.error is None and all(o.request_meets(r) for o in objectives)
    )


def load_meets(records: Sequence[RequestRecord], objectives: Sequence[Objective]) -> bool:
    """Whether every objective's percentile over the load is within its limit."""
    for objective in objectives:
        value = objective.load_value(records)
        if value is None or value > objective.limit_ms:
            return False
    return True


__all__ = [
    "METRICS",
    "PERCENTILES",
    "Objective",
    "good_requests",
    "load_meets",
    "parse_objectives",
    "request_tpot_ms",
]
