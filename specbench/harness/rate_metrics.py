"""One open-loop load summarised: offered and achieved rate, latency percentiles, goodput.

Conventions (names carry units, as guidellm's do):

* the load's *window* is the span the requests were due in, ``count / rate`` seconds
  (the schedule's last offset plus one mean gap); the requests still running when it
  ends are counted (``unfinished_at_window_end``), not dropped: they still finish and
  their latencies are in the percentiles, as vllm bench serve waits for every request;
* ``scheduled_rate_per_s`` is the rate the schedule really offered, (count - 1) over
  the span from the first to the last due time: a seeded Poisson schedule of a few dozen
  requests is tens of percent off its mean rate, and the server is judged against what
  it was sent;
* ``achieved_rate_per_s`` is (finished - 1) over the span from the first to the last
  finish: a server that keeps up finishes requests as they were sent, one that cannot
  at its capacity (its queue drains at that rate after the window). (Counting finishes
  inside the sending window instead would read every short load as a shortfall: its
  last requests are still in flight for their own latency when it ends.)
* ``sent_rate_per_s`` is the rate the client's timer actually fired at. When it falls
  more than :data:`CLIENT_SHORTFALL` short of the offered rate the load is flagged
  ("sent 161 of 200 req/s: the client is the bottleneck"), never reported as a silently
  lower rate;
* ``goodput_per_s`` is vllm bench serve's: requests that met every objective over the
  whole run (first send to last finish); see specbench.harness.slo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from specbench.harness.loads import RateLoad
from specbench.harness.slo import Objective, good_requests, load_meets, request_tpot_ms
from specbench.rundir.records import RequestRecord

#: The client is flagged when it sent at less than this fraction of the offered rate.
CLIENT_SHORTFALL = 0.95
#: A load is said to fall short when it served less than this fraction of the rate its
#: schedule offered.
ACHIEVED_SHORTFALL = 0.95


@dataclass
class OpenLoopRun:
    """What an open-loop client did: one record per request in issue order, and when each
    request was due, when the client's timer fired for it and when it was sent (after any
    wait at ``--max-concurrency``), in seconds after the load started, on the clock the
    records' latencies were timed on."""

    records: list[RequestRecord]
    due_s: list[float]
    fired_s: list[float]
    sent_s: list[float]
    #: Why the run's figures are not to be trusted as they stand (a simulated server
    #: that could not keep its time scale), in words; copied to the summary's flags.
    notes: list[str] = field(default_factory=list)


def _pcts(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    p50, p90, p99 = (float(v) for v in np.percentile(np.asarray(values, float), [50, 90, 99]))
    return p50, p90, p99


@dataclass
class RateSummary:
    """One rate load of one configuration (the row results.json and trials.csv get)."""

    load: dict[str, Any]
    requests: int
    completed: int
    failed: int
    offered_rate_per_s: float
    sent_rate_per_s: float
    scheduled_rate_per_s: float
    achieved_rate_per_s: float
    window_s: float
    unfinished_at_window_end: int
    send_lag_ms_p50: float | None
    send_lag_ms_p99: float | None
    ttft_ms_p50: float | None
    ttft_ms_p90: float | None
    ttft_ms_p99: float | None
    tpot_ms_p50: float | None
    tpot_ms_p90: float | None
    tpot_ms_p99: float | None
    itl_ms_p50: float | None
    itl_ms_p90: float | None
    itl_ms_p99: float | None
    e2e_ms_p50: float | None
    e2e_ms_p90: float | None
    e2e_ms_p99: float | None
    #: Finished requests over the whole run (first send to last finish): the
    #: throughput a burst measures, which ``--load sweep`` takes as the saturation rate.
    completed_per_s: float
    output_tokens_per_s: float
    output_tokens_per_s_per_user: float | None
    goodput_per_s: float | None = None
    slo_met: bool | None = None
    #: Why the load's figures are not the rate asked for, in words; empty when they are.
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_rate(
    run: OpenLoopRun, load: RateLoad, objectives: Sequence[Objective] = ()
) -> RateSummary:
    """Summarise one open-loop load; see the module docstring for each figure."""
    records = run.records
    n = len(records)
    window = n / load.rate_per_s
    finished = [
        (sent, r)
        for sent, r in zip(run.sent_s, records, strict=True)
        if r.error is None and r.e2e_ms
    ]
    ok = [r for _, r in finished]
    ends = [sent + (r.e2e_ms or 0.0) / 1000.0 for sent, r in finished]
    in_window = sum(1 for end in ends if end <= window)
    finish_span = max(ends) - min(ends) if len(ends) > 1 else 0.0
    lag = [(f - d) * 1000.0 for f, d in zip(run.fired_s, run.due_s, strict=True)]
    due_span = run.due_s[-1] - run.due_s[0] if n > 1 else 0.0
    fired_span = run.fired_s[-1] - run.fired_s[0] if n > 1 else 0.0
    sent_rate = load.rate_per_s * (due_span / fired_span) if fired_span > 0 else load.rate_per_s
    scheduled = (n - 1) / due_span if due_span > 0 else load.rate_per_s
    duration = (max(ends) - min(run.sent_s)) if ends else 0.0
    tokens = sum(r.completion_tokens for r in ok)
    per_user = [1000.0 / t for r in ok if (t := request_tpot_ms(r)) is not None and t > 0]
    ttft = _pcts([r.ttft_ms for r in ok if r.ttft_ms is not None])
    tpot = _pcts([t for r in ok if (t := request_tpot_ms(r)) is not None])
    itl = _pcts([g for r in ok for g in r.itl_ms])
    e2e = _pcts([r.e2e_ms for r in ok if r.e2e_ms is not None])
    lag_p = _pcts(lag)
    summary = RateSummary(
        load=load.to_dict(),
        requests=n,
        completed=len(ok),
        failed=n - len(ok),
        offered_rate_per_s=load.rate_per_s,
        sent_rate_per_s=sent_rate,
        scheduled_rate_per_s=scheduled,
        achieved_rate_per_s=(len(ends) - 1) / finish_span if finish_span > 0 else scheduled,
        window_s=window,
        unfinished_at_window_end=sum(1 for s in run.sent_s if s <= window) - in_window,
        send_lag_ms_p50=lag_p[0],
        send_lag_ms_p99=lag_p[2],
        ttft_ms_p50=ttft[0],
        ttft_ms_p90=ttft[1],
        ttft_ms_p99=ttft[2],
        tpot_ms_p50=tpot[0],
        tpot_ms_p90=tpot[1],
        tpot_ms_p99=tpot[2],
        itl_ms_p50=itl[0],
        itl_ms_p90=itl[1],
        itl_ms_p99=itl[2],
        e2e_ms_p50=e2e[0],
        e2e_ms_p90=e2e[1],
        e2e_ms_p99=e2e[2],
        completed_per_s=len(ok) / duration if duration > 0 else 0.0,
        output_tokens_per_s=tokens / duration if duration > 0 else 0.0,
        output_tokens_per_s_per_user=float(np.mean(per_user)) if per_user else None,
    )
    if objectives:
        summary.goodput_per_s = good_requests(records, objectives) / duration if duration else 0.0
        summary.slo_met = load_meets(records, objectives)
    summary.flags.extend(run.notes)
    _flag(summary)
    return summary


def _flag(summary: RateSummary) -> None:
    offered = summary.offered_rate_per_s
    if summary.sent_rate_per_s < CLIENT_SHORTFALL * offered:
        summary.flags.append(
            f"sent {summary.sent_rate_per_s:.3g} of {offered:g} req/s: the client is the bottleneck"
        )
    scheduled = summary.scheduled_rate_per_s
    if summary.achieved_rate_per_s < ACHIEVED_SHORTFALL * scheduled:
        summary.flags.append(
            f"served {summary.achieved_rate_per_s:.3g} of the {scheduled:.3g} req/s sent "
            f"({summary.unfinished_at_window_end} requests still running when the "
            f"{summary.window_s:.3g} s window ended)"
        )


__all__ = [
    "ACHIEVED_SHORTFALL",
    "CLIENT_SHORTFALL",
    "OpenLoopRun",
    "RateSummary",
    "summarize_rate",
]
