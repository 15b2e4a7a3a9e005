"""The measurement window: steady-state throughput, stall flags and speedup intervals.

A closed loop of ``c`` streams keeps ``c`` requests in the engine at once, so by
Little's law its throughput is ``c * sum(tokens) / sum(latency)`` over the requests it
ran (each stream is busy exactly for the sum of its requests' latencies). Unlike
"tokens over the wall span from the first start to the last end", this counts only
time a request spent *in a request*: not the gaps between requests on the client, not
the ramp-up while ``c`` connections are opened, and not the drain at the end. With every
connection opened during a warm-up at full concurrency (see the load generator), what
is left in each latency is the engine's work plus the server's own queueing, which is
what a speedup is about.

Stalls are flagged, not hidden (pyperf's habit): a TTFT tail far above the median, a
connection that took long to open, or a gap between chunks far above the stream's own
pace each say that something other than the engine set the numbers. A flagged load is
measured again by the sweep (``--repeats``).

The speedup's confidence interval is a percentile bootstrap (Efron & Tibshirani, "An
Introduction to the Bootstrap", 1993, ch. 13) over requests. When both sides replayed
the same prompts, requests are resampled by prompt, so each replicate compares the two
servers on one set of prompts (a paired bootstrap): prompt-length effects cancel and
the interval is much narrower than with independent resampling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NAN = float("nan")

#: Bootstrap replicates; 1000 puts the 2.5/97.5 percentiles within ~1% of their limit.
BOOTSTRAP_REPLICATES = 1000
#: Two-sided level of the speedup interval.
CI_LEVEL = 0.95

#: TTFT p99 above this many times the median, and above STALL_TTFT_SHARE of the median
#: request's latency, is a stall: a request waited for a slot, a connection or a retry.
STALL_TTFT_RATIO = 4.0
STALL_TTFT_SHARE = 0.25
#: Opening a connection on a live server takes well under this (the kernel answers the
#: handshake); anything slower was queued (full accept backlog, SYN retransmits).
STALL_CONNECT_MS = 200.0
#: A chunk gap above this many times the stream's median gap, and above
#: STALL_GAP_MIN_MS, is a pause of the server or of the client's event loop.
STALL_GAP_RATIO = 20.0
STALL_GAP_MIN_MS = 250.0


@dataclass(frozen=True)
class RequestSample:
    """What the window needs of one successful request (units in the names)."""

    prompt_id: str
    completion_tokens: int
    #: Request sent (connection ready) to end of stream.
    latency_ms: float
    ttft_ms: float | None = None
    #: Time to obtain a connection (pool wait + TCP connect); None when not measured.
    connect_ms: float | None = None
    #: Longest gap between two token-carrying chunks of this stream.
    max_gap_ms: float | None = None
    #: Median gap between token-carrying chunks of this stream.
    median_gap_ms: float | None = None


def steady_throughput(samples: Sequence[RequestSample], concurrency: int) -> float:
    """Output tokens/s of a closed loop at ``concurrency``: c * sum(tokens) / sum(latency)."""
    latency_s = sum(s.latency_ms for s in samples) / 1000.0
    if not samples or latency_s <= 0 or concurrency < 1:
        return NAN
    return concurrency * sum(s.completion_tokens for s in samples) / latency_s


def _sums(samples: Sequence[RequestSample]) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.array([s.completion_tokens for s in samples], dtype=float)
    latency = np.array([s.latency_ms for s in samples], dtype=float)
    return tokens, latency


def _ratio_replicates(
    spec: Sequence[RequestSample],
    base: Sequence[RequestSample],
    rng: np.random.Generator,
    replicates: int,
) -> np.ndarray:
    """Bootstrap replicates of spec/base throughput (the concurrency cancels)."""
    spec_ids = sorted({s.prompt_id for s in spec})
    paired = spec_ids == sorted({s.prompt_id for s in base})
    if paired:
        # Resample prompts; a prompt carries all of its requests on both sides.
        index = {pid: i for i, pid in enumerate(spec_ids)}
        counts = rng.multinomial(len(spec_ids), [1.0 / len(spec_ids)] * len(spec_ids), replicates)

        def per_prompt(samples: Sequence[RequestSample]) -> tuple[np.ndarray, np.ndarray]:
            tok = np.zeros(len(spec_ids))
            lat = np.zeros(len(spec_ids))
            for s in samples:
                tok[index[s.prompt_id]] += s.completion_tokens
                lat[index[s.prompt_id]] += s.latency_ms
            return tok, lat

        st, sl = per_prompt(spec)
        bt, bl = per_prompt(base)
        weights = counts.astype(float)
        paired_ratios = (weights @ st / (weights @ sl)) / (weights @ bt / (weights @ bl))
        return np.asarray(paired_ratios, dtype=float)
    st, sl = _sums(spec)
    bt, bl = _sums(base)
    si = rng.integers(0, len(spec), size=(replicates, len(spec)))
    bi = rng.integers(0, len(base), size=(replicates, len(base)))
    spec_rate = st[si].sum(axis=1) / sl[si].sum(axis=1)
    base_rate = bt[bi].sum(axis=1) / bl[bi].sum(axis=1)
    return np.asarray(spec_rate / base_rate, dtype=float)


def speedup_interval(
    spec: Sequence[RequestSample],
    base: Sequence[RequestSample],
    *,
    replicates: int = BOOTSTRAP_REPLICATES,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the steady-state speedup (NaN, NaN when unknown).

    Both sides must be measured at the same concurrency (it cancels in the ratio).
    Fewer than two requests on a side leave nothing to resample.
    """
    if len(spec) < 2 or len(base) < 2:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    ratios = _ratio_replicates(spec, base, rng, replicates)
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        return NAN, NAN
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)


def stall_reasons(samples: Sequence[RequestSample]) -> list[str]:
    """Why this load's numbers may be set by something other than the engine (may be [])."""
    reasons: list[str] = []
    ttft = [s.ttft_ms for s in samples if s.ttft_ms is not None]
    latency = [s.latency_ms for s in samples]
    if len(ttft) >= 2 and latency:
        p50, p99 = (float(v) for v in np.percentile(ttft, [50, 99]))
        typical = float(np.median(latency))
        if p99 > STALL_TTFT_RATIO * max(p50, 1e-9) and p99 > STALL_TTFT_SHARE * typical:
            reasons.append(
                f"TTFT tail: p99 {p99:.0f} ms vs median {p50:.0f} ms "
                f"(> {STALL_TTFT_RATIO:g}x and > {STALL_TTFT_SHARE:.0%} of a request)"
            )
    connects = [s.connect_ms for s in samples if s.connect_ms is not None]
    if connects and max(connects) > STALL_CONNECT_MS:
        slow = sum(1 for c in connects if c > STALL_CONNECT_MS)
        reasons.append(
            f"slow connections: {slow} took > {STALL_CONNECT_MS:g} ms to open "
            f"(max {max(connects):.0f} ms; a full accept queue?)"
        )
    gaps = [
        (s.max_gap_ms, s.median_gap_ms)
        for s in samples
        if s.max_gap_ms is not None and s.median_gap_ms is not None
    ]
    stalled = [g for g, m in gaps if g > STALL_GAP_MIN_MS and g > STALL_GAP_RATIO * max(m, 1e-9)]
    if stalled:
        reasons.append(
            f"stream stalls: {len(stalled)} request(s) paused up to {max(stalled):.0f} ms "
            f"between chunks (> {STALL_GAP_RATIO:g}x their median gap)"
        )
    return reasons


def interval_excludes(low: float, high: float, value: float) -> bool:
    """Whether a finite interval lies wholly above or below ``value``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return False
    return high < value or low > value


__all__ = [
    "BOOTSTRAP_REPLICATES",
    "CI_LEVEL",
    "RequestSample",
    "interval_excludes",
    "speedup_interval",
    "stall_reasons",
    "steady_throughput",
]
