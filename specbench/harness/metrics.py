"""Per-trial metrics from raw request records: tau, tokens/s, latency percentiles, noise.

Definitions (kept in one place so the sweep, the report and the gate agree):

* ``tau`` = sum(completion_tokens) / sum(spec_verify_ct) over successful requests: a
  ratio of sums, not a mean of per-request ratios, so long requests weigh by their
  tokens exactly as SGLang's own accept-length counter does. NaN for the baseline.
  ``tau_p10/p50/p90`` describe the per-request distribution.
* ``output_tokens_per_s`` = concurrency * sum(completion_tokens) / sum(latency) over
  successful requests, the latency of a request being the server's own
  ``server_e2e_ms`` when reported, else ``e2e_ms - connect_ms``: the
  steady state of a closed loop by Little's law (``specbench.harness.window``). Gaps
  between a stream's requests, the ramp-up and the tail, and connection setup are left
  out, so the figure is the engine's and not the client's.
* ``per_stream_tokens_per_s`` = mean of RequestRecord.output_tokens_per_s: how fast one
  user sees tokens once the first has arrived. Requests whose stream was released at
  once (no decode observed, see RequestRecord.output_tokens_per_s) are left out; NaN when
  every request was.
* ``speedup`` = output_tokens_per_s / the baseline's at the same prompts and concurrency;
  ``speedup_ci_low/high`` its 95% bootstrap interval from the per-request samples of
  both sides (paired by prompt), NaN when the baseline's samples are not given.
* TTFT, ITL (pooled over every token of every successful request) and e2e percentiles.
* ``noisy`` follows pyperf's habit of warning rather than hiding: too few successful
  requests, per-stream speed spread too wide to trust a ratio of two such runs, or a
  stall (TTFT tail, slow connections, long gaps between chunks; see
  ``specbench.harness.window.stall_reasons``).

Nothing here raises on bad measurements: an all-failed trial gives NaN metrics and its
error count, so a sweep can record it and move on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from specbench.harness.window import (
    RequestSample,
    speedup_interval,
    stall_reasons,
    steady_throughput,
)
from specbench.rundir.records import RequestRecord

#: Fewer successful requests than this and percentiles mean little.
MIN_SUCCESSFUL_REQUESTS = 5
#: Coefficient of variation of per-stream tokens/s above which a run is flagged noisy.
MAX_STREAM_CV = 0.25

NAN = float("nan")


@dataclass
class ConfigMetrics:
    """One configuration at one concurrency, summarised (column names = TRIAL_COLUMNS)."""

    tau: float
    tau_p10: float
    tau_p50: float
    tau_p90: float
    output_tokens_per_s: float
    per_stream_tokens_per_s: float
    speedup: float
    speedup_ci_low: float
    speedup_ci_high: float
    ttft_ms_p50: float
    ttft_ms_p90: float
    ttft_ms_p99: float
    itl_ms_p50: float
    itl_ms_p90: float
    itl_ms_p99: float
    e2e_ms_p50: float
    #: Every record summarised, failed ones included.
    num_requests: int
    num_errors: int
    #: Sums over successful requests; spec_verify_ct is None when no request had one.
    completion_tokens: int
    spec_verify_ct: int | None
    noisy: bool
    #: Why the run is flagged noisy; empty when it is not.
    noise_reason: str
    #: The records' concurrency (0 when they did not say); used to refuse comparing
    #: against a baseline measured at another concurrency.
    concurrency: int = 0
    #: True when every record came from the simulator.
    simulated: bool = False

    def as_row(self) -> dict[str, Any]:
        """Fields that are trial columns (TRIAL_COLUMNS names), for trials.csv rows."""
        row = asdict(self)
        if not self.concurrency:
            row.pop("concurrency")
        return row


def _percentiles(values: Sequence[float], qs: Sequence[float]) -> list[float]:
    if not values:
        return [NAN] * len(qs)
    arr = np.asarray(values, dtype=float)
    return [float(v) for v in np.percentile(arr, qs)]


def _verify_count(record: RequestRecord) -> int | None:
    """Verify forwards of a request; derived from the accept length when a server
    reported only that (spec_verify_ct is reported by every SGLang version we know,
    so this is a fallback for hand-made or converted records)."""
    if record.spec_verify_ct is not None:
        return record.spec_verify_ct
    if record.spec_accept_length and record.spec_accept_length > 0:
        return max(1, round(record.completion_tokens / record.spec_accept_length))
    return None


def _tau_tokens(record: RequestRecord) -> int:
    """Tokens credited to the request's verify steps. vLLM reports accepted drafts per
    request (``num_accepted_draft_tokens``): then one token per step plus the accepted
    ones, which matches its ``1 + accepted / drafts`` counters (the completion count
    stops at max_tokens while the last step may accept past it)."""
    if record.spec_accepted_tokens is not None and record.spec_verify_ct:
        return record.spec_verify_ct + record.spec_accepted_tokens
    return record.completion_tokens


def window_samples(records: Sequence[RequestRecord]) -> list[RequestSample]:
    """The successful requests as the measurement window sees them.

    Latency is the server's own arrival-to-finish time when it reports one (SGLang's
    ``e2e_latency``): what the client spent opening a connection, sending, and reading
    behind 31 other streams on a busy CPU is not the engine's. Otherwise it is
    ``e2e_ms - connect_ms``. Gaps between chunks are read from ``itl_ms`` (a chunk of k tokens after a
    gap g holds k entries of g/k, so a stall shows at least as g/k).
    """
    out: list[RequestSample] = []
    for r in records:
        if not r.ok or r.e2e_ms is None:
            continue
        latency = r.server_e2e_ms
        if latency is None or not latency > 0:
            latency = r.e2e_ms - (r.connect_ms or 0.0)
        gaps = [g for g in r.itl_ms if g > 0]
        out.append(
            RequestSample(
                prompt_id=r.prompt_id,
                completion_tokens=r.completion_tokens,
                latency_ms=max(latency, 1e-6),
                ttft_ms=r.ttft_ms,
                connect_ms=r.connect_ms,
                max_gap_ms=max(gaps) if gaps else None,
                median_gap_ms=float(np.median(gaps)) if gaps else None,
            )
        )
    return out


def _tau(ok: Sequence[RequestRecord]) -> tuple[float, float, float, float, int | None]:
    """(tau, p10, p50, p90, sum of verify counts) over the requests that carry counters."""
    verify_counts = [(r, v) for r in ok if (v := _verify_count(r)) is not None and v > 0]
    if not verify_counts:
        return NAN, NAN, NAN, NAN, None
    verify_total = sum(v for _, v in verify_counts)
    tau = sum(_tau_tokens(r) for r, _ in verify_counts) / float(verify_total)
    p10, p50, p90 = _percentiles([_tau_tokens(r) / v for r, v in verify_counts], (10, 50, 90))
    return tau, p10, p50, p90, verify_total


def _noise_reasons(
    ok: Sequence[RequestRecord], streams: Sequence[float], samples: Sequence[RequestSample]
) -> list[str]:
    reasons: list[str] = []
    if len(ok) < MIN_SUCCESSFUL_REQUESTS:
        reasons.append(f"only {len(ok)} successful requests (< {MIN_SUCCESSFUL_REQUESTS})")
    if len(streams) >= 2:
        mean = float(np.mean(streams))
        cv = float(np.std(streams, ddof=1)) / mean if mean > 0 else math.inf
        if cv > MAX_STREAM_CV:
            reasons.append(
                f"per-stream tokens/s varies widely (coefficient of variation {cv:.2f} > {MAX_STREAM_CV})"
            )
    reasons.extend(stall_reasons(samples))
    return reasons


def _speedup(
    output_tps: float,
    samples: Sequence[RequestSample],
    concurrency: int,
    baseline: ConfigMetrics | None,
    baseline_samples: Sequence[RequestSample] | None,
) -> tuple[float, float, float]:
    """(speedup, CI low, CI high) against the baseline at the same concurrency."""
    if baseline is None:
        return NAN, NAN, NAN
    if concurrency and baseline.concurrency and concurrency != baseline.concurrency:
        raise ValueError(
            f"baseline measured at concurrency {baseline.concurrency}, "
            f"these records at {concurrency}"
        )
    base = baseline.output_tokens_per_s
    if not (math.isfinite(base) and base > 0 and math.isfinite(output_tps)):
        return NAN, NAN, NAN
    low, high = speedup_interval(samples, baseline_samples or [])
    return output_tps / base, low, high


def summarize(
    records: Sequence[RequestRecord],
    baseline: ConfigMetrics | None = None,
    *,
    baseline_samples: Sequence[RequestSample] | None = None,
) -> ConfigMetrics:
    """Summarise one (configuration, concurrency) load; see the module docstring.

    ``baseline_samples`` (``window_samples`` of the baseline's records, or per-prompt
    sums of them) give the speedup its confidence interval.
    """
    ok = [r for r in records if r.ok]
    concurrencies = {r.concurrency for r in records if r.concurrency}
    if len(concurrencies) > 1:
        raise ValueError(
            f"summarize() needs the records of one concurrency, got {sorted(concurrencies)}"
        )
    concurrency = concurrencies.pop() if concurrencies else 0

    completion = sum(r.completion_tokens for r in ok)
    tau, tau_p10, tau_p50, tau_p90, verify_total = _tau(ok)
    samples = window_samples(ok)
    output_tps = steady_throughput(samples, max(1, concurrency))
    streams = [s for r in ok if (s := r.output_tokens_per_s) is not None]
    per_stream = float(np.mean(streams)) if streams else NAN
    speedup, ci_low, ci_high = _speedup(
        output_tps, samples, concurrency, baseline, baseline_samples
    )
    ttft = _percentiles([r.ttft_ms for r in ok if r.ttft_ms is not None], (50, 90, 99))
    itl = _percentiles([x for r in ok for x in r.itl_ms], (50, 90, 99))
    (e2e_p50,) = _percentiles([r.e2e_ms for r in ok if r.e2e_ms is not None], (50,))
    reasons = _noise_reasons(ok, streams, samples)
    return ConfigMetrics(
        tau=tau,
        tau_p10=tau_p10,
        tau_p50=tau_p50,
        tau_p90=tau_p90,
        output_tokens_per_s=output_tps,
        per_stream_tokens_per_s=per_stream,
        speedup=speedup,
        speedup_ci_low=ci_low,
        speedup_ci_high=ci_high,
        ttft_ms_p50=ttft[0],
        ttft_ms_p90=ttft[1],
        ttft_ms_p99=ttft[2],
        itl_ms_p50=itl[0],
        itl_ms_p90=itl[1],
        itl_ms_p99=itl[2],
        e2e_ms_p50=e2e_p50,
        num_requests=len(records),
        num_errors=len(records) - len(ok),
        completion_tokens=completion,
        spec_verify_ct=verify_total,
        noisy=bool(reasons),
        noise_reason="; ".join(reasons),
        concurrency=concurrency,
        simulated=bool(records) and all(r.simulated for r in records),
    )


__all__ = [
    "MAX_STREAM_CV",
    "MIN_SUCCESSFUL_REQUESTS",
    "ConfigMetrics",
    "summarize",
    "window_samples",
]
