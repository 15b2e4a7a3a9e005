"""Open-loop client: requests sent at their scheduled times, whatever the server does.

Each request is due at its load's offset (``RateLoad.send_offsets_s``, the same for every
configuration); one timer task sleeps to each due time and starts the request as its own
task, so a slow stream never delays the next send. What the timer really did is kept:
``fired_s`` (when it woke for the request) beside ``due_s``, so a client that cannot keep
up shows as a sent rate below the offered one (rate_metrics flags it: "the client is the
bottleneck") instead of a silently lower rate. ``--max-concurrency`` holds a due request
in the client until one in flight finishes; ``sent_s`` is then later than ``due_s``.

Against serve-sim (which times requests on its virtual clock) the schedule is run at the
server's ``--time-scale`` and the server is asked to let its clock follow the wall clock
while idle (``POST /specbench/clock``), so arrivals land at their scheduled virtual
offsets; records are timed on that clock, and so are the send times returned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from specbench.errors import ServerError
from specbench.harness.backend import LoadFailedError, LoadSpec, ProgressCallback
from specbench.harness.engine import EngineAdapter
from specbench.harness.loadgen import (
    Client,
    ServerGoneError,
    open_client,
    server_reachable,
    warm_up,
)
from specbench.harness.loads import RateRun
from specbench.harness.rate_metrics import OpenLoopRun
from specbench.harness.sglang import SGLANG
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable
from specbench.spec_config import SpecConfig

#: serve-sim's route that makes its idle clock follow the wall clock (open loop only: a
#: closed loop's HTTP turnaround would otherwise count, scaled up, as idle time).
SIM_CLOCK_ROUTE = "/specbench/clock"


def as_load_spec(run: RateRun) -> LoadSpec:
    """The closed-loop spec the request senders and the warm-up read (prompts, token
    budget, timeout, chat template)."""
    return LoadSpec(
        concurrency=max(1, len(run.warmup_prompts)),
        prompts=list(run.prompts),
        max_new_tokens=run.max_new_tokens,
        warmup_requests=len(run.warmup_prompts),
        warmup_max_new_tokens=run.warmup_tokens,
        request_timeout_s=run.request_timeout_s,
        num_requests=len(run.prompts),
        chat_template=run.chat_template,
    )


#: The timer sleeps to this long before a due time, then yields one event-loop turn at
#: a time until it: the loop's own sleep wakes up to a millisecond late (epoll's timeout
#: is whole milliseconds), which alone would be the p99 of a bare asyncio timer.
TIMER_SPIN_S = 0.002
#: serve-sim's steps may fall behind the wall clock by this fraction of the load's
#: window before the load is flagged (its arrivals then came faster than scheduled).
SIM_BEHIND_FRACTION = 0.05


async def _sim_clock(client: Client, follow_wall: bool) -> float:
    """Switch serve-sim's open-loop clock; returns how far it fell behind (virtual s)."""
    async with client.http.post(
        client.endpoint + SIM_CLOCK_ROUTE,
        json={"follow_wall": follow_wall},
        timeout=aiohttp.ClientTimeout(total=10.0),
    ) as resp:
        body = await resp.json(content_type=None) if resp.status == 200 else None
    if not isinstance(body, dict):
        raise ServerError(f"serve-sim at {client.endpoint} refused {SIM_CLOCK_ROUTE}")
    behind = body.get("behind_s")
    return float(behind) if isinstance(behind, (int, float)) else 0.0


class _Schedule:
    """The timer and the requests it started, for one open-loop load."""

    def __init__(
        self,
        run: RateRun,
        send: Callable[[int], Awaitable[RequestRecord]],
        scale: float,
        progress: ProgressCallback | None,
    ) -> None:
        self.run = run
        self.send = send
        self.scale = scale
        self.progress = progress
        n = len(run.prompts)
        self.due = run.due_s
        self.fired = [0.0] * n
        self.sent = [0.0] * n
        self.records: list[RequestRecord | None] = [None] * n
        self.done = 0
        cap = run.load.max_in_flight
        self.slots = asyncio.Semaphore(cap) if cap is not None else None

    async def one(self, index: int, start: float) -> None:
        if self.slots is not None:
            await self.slots.acquire()
        try:
            self.sent[index] = (time.perf_counter() - start) / self.scale
            self.records[index] = await self.send(index)
        finally:
            if self.slots is not None:
                self.slots.release()
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, len(self.records))

    async def play(self) -> None:
        """Sleep to each due time, fire, move on; then wait for every request."""
        start = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        try:
            for index, due in enumerate(self.due):
                at = start + due * self.scale
                delay = at - time.perf_counter()
                if delay > TIMER_SPIN_S:
                    await asyncio.sleep(delay - TIMER_SPIN_S)
                while time.perf_counter() < at:
                    await asyncio.sleep(0)  # the last stretch: one loop turn at a time
                self.fired[index] = (time.perf_counter() - start) / self.scale
                tasks.append(asyncio.ensure_future(self.one(index, start)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_open_loop_async(
    endpoint: str,
    run: RateRun,
    progress: ProgressCallback | None = None,
    *,
    engine: EngineAdapter = SGLANG,
    config: SpecConfig | None = None,
    sim_time_scale: float | None = None,
) -> OpenLoopRun:
    """Warm up (closed loop, discarded), then send ``run``'s requests on schedule.

    ``sim_time_scale``: the server is serve-sim at that ``--time-scale`` (see the module
    docstring). Raises LoadFailedError, with the records finished so far, when the
    server stops accepting connections.
    """
    load = as_load_spec(run)
    scale = sim_time_scale or 1.0
    async with open_client(endpoint, load, engine, config) as client:
        if run.warmup_prompts:
            await warm_up(client, load)
        if sim_time_scale is not None:
            await _sim_clock(client, True)
        behind = 0.0
        try:

            async def send(index: int) -> RequestRecord:
                record = await client.send(run.prompts[index], run.max_new_tokens)
                lost = record.error is not None and record.error.startswith("connection lost")
                if lost and not await server_reachable(client.http, client.endpoint):
                    raise ServerGoneError(str(record.error))
                return record

            schedule = _Schedule(run, send, scale, progress)
            try:
                await schedule.play()
            except ServerGoneError as exc:
                done = [r for r in schedule.records if r is not None]
                raise LoadFailedError(
                    f"the server at {endpoint} stopped accepting connections during the rate "
                    f"load ({len(done)} of {len(run.prompts)} requests done): "
                    f"{printable(str(exc))}",
                    records=done,
                ) from None
        finally:
            if sim_time_scale is not None:
                behind = await _sim_clock(client, False)
    result = _result(schedule, sim_time_scale is not None)
    window = len(run.prompts) / run.load.rate_per_s
    if behind > SIM_BEHIND_FRACTION * window:
        result.notes.append(
            f"serve-sim fell {behind:.3g} s behind its --time-scale {scale:g} (the host is too "
            "slow for it): arrivals came faster than scheduled; raise --time-scale"
        )
    return result


def _result(schedule: _Schedule, sim_clock: bool) -> OpenLoopRun:
    """Records in issue order; on a simulated clock the send times are the server's
    admission times (relative to the first request's), the clock the records use."""
    records = [r for r in schedule.records if r is not None]
    sent = list(schedule.sent)
    if sim_clock:
        stamped = [(i, r) for i, r in enumerate(records) if r.error is None and r.started_at]
        if stamped:
            first_index, first = stamped[0]
            base = float(first.started_at or 0.0) - schedule.sent[first_index]
            for index, record in stamped:
                sent[index] = float(record.started_at or 0.0) - base
    return OpenLoopRun(records, due_s=list(schedule.due), fired_s=schedule.fired, sent_s=sent)


def run_open_loop(
    endpoint: str,
    run: RateRun,
    progress: ProgressCallback | None = None,
    *,
    engine: EngineAdapter = SGLANG,
    config: SpecConfig | None = None,
    sim_time_scale: float | None = None,
) -> OpenLoopRun:
    """Blocking wrapper of :func:`run_open_loop_async` for the synchronous sweep."""
    return asyncio.run(
        run_open_loop_async(
            endpoint,
            run,
            progress,
            engine=engine,
            config=config,
            sim_time_scale=sim_time_scale,
        )
    )


__all__ = ["SIM_CLOCK_ROUTE", "as_load_spec", "run_open_loop", "run_open_loop_async"]
