"""Closed-loop load generator for any engine that serves over HTTP.

``concurrency`` workers each send one request, read its stream to the end, and send the
next: the running batch size stays pinned at ``concurrency``, which is the quantity
speculation's benefit depends on. How one request is sent and its stream read is the
engine's wire protocol, asked of its adapter (``EngineAdapter.request_sender``: SGLang's
native ``/generate`` in native_client, the OpenAI-compatible stream in openai_client);
this module only opens the client, drives the loop, the warm-up and the stall watch.

Timing is taken on the client, per streamed chunk, by the same conventions for every
protocol (sse_request.TokenArrivals):

* ``ttft_ms``: request sent -> first chunk carrying at least one token.
* ``itl_ms``: one entry per generated token after the first. A chunk that brings ``k``
  new tokens after a gap of ``g`` ms contributes ``k`` entries of ``g / k``: with
  speculation one verify step releases several tokens at once, and counting that as one
  long gap would make ITL percentiles depend on the stream interval instead of on the
  speed tokens arrive at. This is the same convention as the in-process SimBackend, so
  that a simulated and a served run of one configuration give the same ITL samples.
* ``e2e_ms``: request sent -> end of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp

from specbench.harness.backend import LoadFailedError, LoadSpec, ProgressCallback, StallCallback
from specbench.harness.claims import ClaimContext, DeliveryJitter
from specbench.harness.connect_timing import connect_trace_config
from specbench.harness.engine import EngineAdapter
from specbench.harness.prompts import Prompt
from specbench.harness.sglang import SGLANG
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable
from specbench.spec_config import SpecConfig

#: Read buffer of the HTTP client. SGLang's streamed chunks are cumulative (the whole
#: text and every output id so far), so one SSE line of a long answer outgrows
#: aiohttp's 64 KiB default (it fails with "Chunk too big" past 128 KiB, about 10k
#: tokens); SGLang's own bench_serving raises it to 10 MiB for the same reason.
READ_BUFSIZE = 10 * 1024**2
#: A request in flight for longer than this counts as stalled in the progress display
#: (or half the request timeout, when that is shorter).
STALL_AFTER_S = 30.0


class ServerGoneError(Exception):
    """The server refused the connection: it is not running any more."""


#: Health-route requests timed before a load: the network part of the delivery jitter.
ROUND_TRIP_PROBES = 3


async def _measure_round_trips(
    http: aiohttp.ClientSession, endpoint: str, jitter: DeliveryJitter
) -> None:
    """Time a few requests to the health route (the largest is the round trip kept);
    a server that does not answer them leaves the event-loop lateness alone to count."""
    for _ in range(ROUND_TRIP_PROBES):
        asked = time.perf_counter()
        try:
            async with http.get(
                endpoint + "/health", timeout=aiohttp.ClientTimeout(total=5.0)
            ) as resp:
                await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return
        jitter.add_round_trip((time.perf_counter() - asked) * 1000.0)


async def _server_reachable(http: aiohttp.ClientSession, endpoint: str) -> bool:
    """Whether anything still accepts connections at the endpoint."""
    try:
        async with http.get(endpoint + "/health", timeout=aiohttp.ClientTimeout(total=5.0)) as resp:
            await resp.read()
        return True
    except aiohttp.ClientConnectorError:
        return False
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return True


def stall_after_s(load: LoadSpec) -> float:
    """How long a request may be in flight before the progress display calls it stalled."""
    return min(STALL_AFTER_S, load.request_timeout_s / 2.0)


async def _watch_stalls(
    in_flight: dict[int, float], after_s: float, on_stall: StallCallback
) -> None:
    """Report, about once a second, how many requests have been in flight too long."""
    last = -1
    while True:
        await asyncio.sleep(min(1.0, after_s))
        now = time.monotonic()
        count = sum(1 for started in in_flight.values() if now - started > after_s)
        if count != last:
            on_stall(count, after_s)
            last = count


RequestSender = Callable[[Prompt, int], Awaitable[RequestRecord]]


@dataclass
class _ClosedLoop:
    """``concurrency`` workers sharing one prompt queue against one server."""

    http: aiohttp.ClientSession
    endpoint: str
    load: LoadSpec
    send: RequestSender
    progress: ProgressCallback | None
    on_stall: StallCallback | None

    async def run(self, prompts: Sequence[Prompt], report: bool) -> list[RequestRecord]:
        """Every prompt once, in completion order (as the in-process SimBackend returns
        them); ``report`` marks the measured pass (progress, full token budget)."""
        tokens = self.load.max_new_tokens if report else self.load.warmup_tokens
        queue = iter(enumerate(prompts))
        total = len(prompts)
        done: list[tuple[int, RequestRecord]] = []
        in_flight: dict[int, float] = {}

        async def worker() -> None:
            for index, prompt in queue:  # shared iterator: each prompt goes to one worker
                in_flight[index] = time.monotonic()
                try:
                    record = await self.send(prompt, tokens)
                finally:
                    in_flight.pop(index, None)
                lost = record.error is not None and record.error.startswith("connection lost")
                if lost and not await _server_reachable(self.http, self.endpoint):
                    raise ServerGoneError(str(record.error))
                done.append((index, record))
                if report and self.progress is not None:
                    self.progress(len(done), total)

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.load.concurrency, total))]
        workers = list(tasks)
        stall_s = stall_after_s(self.load)
        if self.on_stall is not None:
            tasks.append(asyncio.ensure_future(_watch_stalls(in_flight, stall_s, self.on_stall)))
        try:
            await asyncio.gather(*workers)
        except ServerGoneError as exc:
            raise LoadFailedError(
                f"the server at {self.endpoint} stopped accepting connections during the run "
                f"({len(done)} of {total} requests done): {printable(str(exc))}",
                records=[record for _, record in done] if report else [],
            ) from None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.on_stall is not None:
                self.on_stall(0, stall_s)
        return [record for _, record in done]


@dataclass
class Client:
    """One HTTP client against one server: its connection pool, the request sender
    (the engine's wire protocol, claims checked) and the delivery-jitter context."""

    http: aiohttp.ClientSession
    endpoint: str
    send: RequestSender
    claims: ClaimContext


@contextlib.asynccontextmanager
async def open_client(
    endpoint: str, load: LoadSpec, engine: EngineAdapter, config: SpecConfig | None
) -> AsyncIterator[Client]:
    """The client both load shapes (closed loop here, open loop in open_loop_client)
    send through: the engine's wire protocol (``EngineAdapter.request_sender``: the
    served model read once where the API needs it), round trips timed, the event loop's
    lateness watched while the load runs."""
    endpoint = endpoint.rstrip("/")
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, read_bufsize=READ_BUFSIZE, trace_configs=[connect_trace_config()]
    ) as http:
        claims = ClaimContext(config)
        request = await engine.request_sender(http, endpoint, load, claims)

        async def send(prompt: Prompt, tokens: int) -> RequestRecord:
            try:
                return await request(prompt, tokens)
            except aiohttp.ClientConnectorError as exc:
                raise ServerGoneError(str(exc)) from exc

        await _measure_round_trips(http, endpoint, claims.jitter)
        watcher = asyncio.ensure_future(claims.jitter.watch_loop())
        try:
            yield Client(http, endpoint, send, claims)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def server_reachable(http: aiohttp.ClientSession, endpoint: str) -> bool:
    """Whether anything still accepts connections at the endpoint."""
    return await _server_reachable(http, endpoint)


async def warm_up(client: Client, load: LoadSpec, progress: ProgressCallback | None = None) -> None:
    """The load's warm-up requests at its concurrency, discarded."""
    loop = _ClosedLoop(client.http, client.endpoint, load, client.send, progress, None)
    await loop.run(load.warmup_prompts(), report=False)


async def run_closed_loop_async(
    endpoint: str,
    load: LoadSpec,
    progress: ProgressCallback | None = None,
    *,
    engine: EngineAdapter = SGLANG,
    on_stall: StallCallback | None = None,
    on_measure_start: Callable[[], None] | None = None,
    config: SpecConfig | None = None,
) -> list[RequestRecord]:
    """Warm up, then run ``load`` at its concurrency; one record per request, in completion order.

    ``config`` is what the server was launched with: each request's claims are checked
    against it and against what the client saw (specbench.harness.claims).

    ``on_measure_start`` runs between the warm-up and the measured requests (a session
    reads the engine's counters there, so the warm-up does not count).

    Raises LoadFailedError, carrying the records finished so far, when the server stops
    accepting connections.
    """
    async with open_client(endpoint, load, engine, config) as client:
        loop = _ClosedLoop(client.http, client.endpoint, load, client.send, progress, on_stall)
        # Every stream's connection is opened and used here, at full concurrency, so
        # that connection setup and a backlog of accepts stay out of the timed requests.
        await loop.run(load.warmup_prompts(), report=False)
        if on_measure_start is not None:
            on_measure_start()
        if progress is not None:
            progress(0, load.total_requests)
        return await loop.run(load.request_prompts(), report=True)


def run_closed_loop(
    endpoint: str,
    load: LoadSpec,
    progress: ProgressCallback | None = None,
    *,
    engine: EngineAdapter = SGLANG,
    on_stall: StallCallback | None = None,
    on_measure_start: Callable[[], None] | None = None,
    config: SpecConfig | None = None,
) -> list[RequestRecord]:
    """Blocking wrapper of :func:`run_closed_loop_async` for the synchronous sweep."""
    return asyncio.run(
        run_closed_loop_async(
            endpoint,
            load,
            progress,
            engine=engine,
            on_stall=on_stall,
            on_measure_start=on_measure_start,
            config=config,
        )
    )


__all__ = [
    "STALL_AFTER_S",
    "Client",
    "RequestSender",
    "ServerGoneError",
    "open_client",
    "run_closed_loop",
    "run_closed_loop_async",
    "server_reachable",
    "stall_after_s",
    "warm_up",
]
