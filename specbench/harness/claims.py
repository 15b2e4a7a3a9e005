"""What a server says about a request, checked against what the client saw.

A server's counters and clock are claims: a bug, a proxy or a hostile server can report
anything, and a benchmark that stores the claim stores the lie (a tau of 32 from a tree
that verifies at most 4 tokens a step, 320 million tokens/s from a self-reported latency
of 100 ns). Each engine adapter checks its own numbers here, once, where they enter
(``EngineAdapter.claim_problem``), against a :class:`ClientView` of the same request:

* tokens: at most ``max_new_tokens`` (more is unequal work), and the finishing count
  equal to what was streamed, by the engine's own counting rule;
* verify steps: between ceil((tokens - 1) / (num_steps + 1)) and tokens, so that
  per-request tau lies in [1, num_steps + 1] (a chain of k drafts: k + 1) but for the
  prefill's token, which no verify step produced;
* latency: the server's arrival-to-finish time lies inside the client's own send-to-end
  time (never above it) and is never shorter than the span over which the client saw
  the tokens arrive, less the delivery jitter measured during the same load
  (:class:`DeliveryJitter`).

A claim that fails makes the request a failed request whose error names the claim; a
latency the server did not send is no claim at all, and the client clock is used with a
label saying so (``RequestRecord.latency_fallback``).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig

if TYPE_CHECKING:
    from specbench.harness.engine import EngineAdapter, RequestStats

#: Relative slack for two clocks that should agree exactly (serve-sim reports its
#: virtual clock, and the client times a simulated request on the same clock): float
#: rounding only.
CLOCK_ROUNDING = 1e-9
#: How often the jitter meter wakes up to see how late the event loop runs it.
TICK_S = 0.005
#: The fallback label when a server sends no latency of its own.
NO_SERVER_LATENCY = "no server latency reported: client clock"


@dataclass(frozen=True)
class ClientView:
    """One request as the client observed it, on the client's own clock."""

    #: Tokens streamed, counted by the engine's streaming rule (SGLang: the cumulative
    #: count of the chunks; OpenAI-style: the token ids the chunks carried).
    streamed_tokens: int
    max_new_tokens: int
    #: Send to end of stream, milliseconds (None when the request failed first).
    e2e_ms: float | None
    #: First token's arrival to the last one's, milliseconds (None: under two chunks).
    span_ms: float | None
    #: The delivery jitter measured so far in this load, milliseconds.
    jitter_ms: float
    #: The configuration the server was launched with (None: the baseline or unknown).
    config: SpecConfig | None = None
    #: False when the stream's count is a lower bound only (an OpenAI-style server
    #: without token ids: one token per content chunk, a chunk may carry several).
    streamed_is_exact: bool = True


def tokens_per_step_max(config: SpecConfig | None) -> int | None:
    """The most tokens one verify step can accept: every draft step's token plus the
    bonus (SGLang's tree and vLLM's chain alike); None when the configuration is unknown."""
    return config.num_steps + 1 if config is not None else None


def token_count_problem(view: ClientView, finishing_tokens: int | None) -> str | None:
    """The request's token count against ``max_new_tokens`` and against the stream."""
    tokens = finishing_tokens if finishing_tokens is not None else view.streamed_tokens
    most = max(tokens, view.streamed_tokens)
    if most > view.max_new_tokens:
        return (
            f"claim failed: {most} tokens for max_new_tokens {view.max_new_tokens} "
            f"(an overrun of {most - view.max_new_tokens})"
        )
    if finishing_tokens is not None and (
        finishing_tokens != view.streamed_tokens
        if view.streamed_is_exact
        else finishing_tokens < view.streamed_tokens
    ):
        return (
            f"claim failed: the finishing chunk counts {finishing_tokens} tokens, "
            f"{view.streamed_tokens} were streamed"
        )
    return None


def verify_steps_problem(
    view: ClientView, tokens: int, steps: int | None, name: str = "spec_verify_ct"
) -> str | None:
    """Verify steps between ceil((tokens - 1) / (num_steps + 1)) and tokens."""
    if steps is None:
        return None
    if tokens > 0 and steps == 0:
        return f"claim failed: {name} 0 for {tokens} tokens (no verify step produced them)"
    if steps > tokens:
        return f"claim failed: {name} {steps} > {tokens} tokens (tau below 1)"
    per_step = tokens_per_step_max(view.config)
    # The prefill's forward pass yields the first token before any verify step, so
    # 2-1-3 can stream 16 tokens in 5 steps (1 + 5 x 3): SGLang's own mean, tokens /
    # steps, is then 3.2, above num_steps + 1 by that one token.
    if per_step is not None and steps * per_step + 1 < tokens:
        least = math.ceil((tokens - 1) / per_step)
        return (
            f"claim failed: {name} {steps} for {tokens} tokens (tau {tokens / steps:.3g}); "
            f"at most {per_step} tokens a step means at least {least} steps"
        )
    return None


def latency_problem(view: ClientView, server_e2e_ms: float) -> str | None:
    """The server's own latency against the client's observation of the same request."""
    if not math.isfinite(server_e2e_ms) or server_e2e_ms < 0:
        return f"claim failed: server e2e_latency {server_e2e_ms:g} ms is impossible"
    if view.e2e_ms is not None and server_e2e_ms > view.e2e_ms * (1 + CLOCK_ROUNDING):
        return (
            f"claim failed: server e2e_latency {server_e2e_ms:.6g} ms is longer than the "
            f"{view.e2e_ms:.6g} ms the client waited"
        )
    if view.span_ms is not None and server_e2e_ms < view.span_ms - view.jitter_ms:
        return (
            f"claim failed: server e2e_latency {server_e2e_ms:.6g} ms is shorter than the "
            f"{view.span_ms:.6g} ms over which its tokens arrived (delivery jitter "
            f"{view.jitter_ms:.3g} ms)"
        )
    return None


class DeliveryJitter:
    """How late this client could have seen a chunk, measured while the load runs.

    Two stamps of one stream can be off by at most the time a chunk waits for the
    client to read it: the network round trip (measured by timing requests to the
    server's health route before the load) plus the event loop's lateness (measured by
    a task that asks to wake every ``TICK_S`` and records how late it woke: a client
    busy reading 32 streams on a loaded CPU stamps arrivals late). The largest of each
    seen so far is the tolerance, so it grows with the load it describes.
    """

    def __init__(self) -> None:
        self.round_trip_ms = 0.0
        self.loop_lag_ms = 0.0

    @property
    def ms(self) -> float:
        return self.round_trip_ms + self.loop_lag_ms

    def add_round_trip(self, ms: float) -> None:
        self.round_trip_ms = max(self.round_trip_ms, ms)

    async def watch_loop(self) -> None:
        """Run until cancelled, recording the event loop's largest lateness."""
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK_S)
            late_ms = (time.perf_counter() - asked - TICK_S) * 1000.0
            self.loop_lag_ms = max(self.loop_lag_ms, late_ms)


@dataclass
class ClaimContext:
    """What one load's requests are checked against: the launched configuration and
    the jitter measured while the load runs."""

    config: SpecConfig | None = None
    jitter: DeliveryJitter = field(default_factory=lambda: DeliveryJitter())

    def check(
        self,
        engine: EngineAdapter,
        record: RequestRecord,
        stats: RequestStats,
        *,
        streamed_tokens: int,
        max_new_tokens: int,
        first_at: float | None,
        last_at: float | None,
        streamed_is_exact: bool = True,
    ) -> None:
        """Fail ``record`` when a claim does not hold; label a missing server latency.

        Only a request that succeeded so far is checked (a failed one has its reason).
        """
        if record.error is not None:
            return
        span = (last_at - first_at) * 1000.0 if first_at is not None and last_at else None
        view = ClientView(
            streamed_tokens=streamed_tokens,
            max_new_tokens=max_new_tokens,
            e2e_ms=record.e2e_ms,
            span_ms=span,
            jitter_ms=self.jitter.ms,
            config=self.config,
            streamed_is_exact=streamed_is_exact,
        )
        problem = engine.claim_problem(stats, view)
        if problem is not None:
            record.error = problem
            record.e2e_ms = None
        elif stats.server_e2e_ms is None:
            record.latency_fallback = NO_SERVER_LATENCY


__all__ = [
    "NO_SERVER_LATENCY",
    "ClaimContext",
    "ClientView",
    "DeliveryJitter",
    "latency_problem",
    "token_count_problem",
    "tokens_per_step_max",
    "verify_steps_problem",
]
