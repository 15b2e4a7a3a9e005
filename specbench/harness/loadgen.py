"""Closed-loop load generator for SGLang's native streaming ``/generate``.

``concurrency`` workers each send one request, read its stream to the end, and send the
next: the running batch size stays pinned at ``concurrency``, which is the quantity
speculation's benefit depends on. Requests use temperature 0 and ``ignore_eos`` so that
every configuration generates the same number of tokens for the same prompt.

Timing is taken on the client, per streamed chunk:

* ``ttft_ms``: request sent -> first chunk carrying at least one token.
* ``itl_ms``: one entry per generated token after the first. A chunk that brings ``k``
  new tokens after a gap of ``g`` ms contributes ``k`` entries of ``g / k``: with
  speculation one verify step releases several tokens at once, and counting that as one
  long gap would make ITL percentiles depend on the stream interval instead of on the
  speed tokens arrive at. This is the same convention as the in-process SimBackend, so
  that a simulated and a served run of one configuration give the same ITL samples.
* ``e2e_ms``: request sent -> end of the stream.

A simulated server (serve-sim) stamps every chunk with its virtual clock; its requests
are timed on that clock instead (``started_at`` is then the admission time on it), so
that what is measured is the model and not the host's event-loop overhead at a
compressed ``--time-scale`` (see specbench/harness/serve_sim.py).

Token counts come from ``meta_info.completion_tokens`` (cumulative in every chunk), never
from the text, which the client does not tokenize. The speculative counters
(``spec_verify_ct``, ``spec_accept_length``) are read from the last chunk: current SGLang
sends them only with the finishing chunk, older releases with every chunk. A stream
that ends with ``finish_reason.type == "abort"`` is a failed request, and so is one
that ends without ``data: [DONE]`` or reports impossible statistics (NaN, negative or
fractional counts: see stream_checks). Nothing a server sends reaches an error message
unescaped (safe_text.printable).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from specbench.errors import ServerError
from specbench.harness.backend import LoadFailedError, LoadSpec, ProgressCallback, StallCallback
from specbench.harness.claims import ClaimContext, DeliveryJitter
from specbench.harness.connect_timing import connect_trace_config
from specbench.harness.engine import EngineAdapter, RequestStats
from specbench.harness.openai_client import OUTPUT_HEAD_CHARS, openai_request, served_model
from specbench.harness.prompts import Prompt
from specbench.harness.sglang import SGLANG
from specbench.harness.sse_request import TokenArrivals, new_record, stream_events
from specbench.harness.stream_checks import NO_DONE, as_count, meta_problem
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


def request_id(prompt: Prompt) -> str:
    """A unique SGLang ``rid`` that also carries the prompt's domain.

    SGLang only echoes the rid back; serve-sim reads the domain from it to pick the
    domain's acceptance rate (it has no other way to know what a prompt is about).
    """
    return f"specbench-{prompt.domain}-{uuid.uuid4().hex[:16]}"


def generate_payload(prompt: Prompt, max_new_tokens: int) -> dict[str, Any]:
    return {
        "rid": request_id(prompt),
        "text": prompt.text,
        "sampling_params": {
            "max_new_tokens": max_new_tokens,
            "temperature": 0.0,
            "ignore_eos": True,
        },
        "stream": True,
    }


@dataclass
class _StreamState:
    meta: dict[str, Any]
    completion_tokens: int = 0
    #: SGLang's chunks carry the whole text so far; the last one is the output.
    text: str = ""
    arrivals: TokenArrivals = field(default_factory=TokenArrivals)
    done: bool = False
    #: Timed on the server's virtual clock (decided by the first chunk with tokens).
    sim: bool | None = None
    sim_admitted: float = 0.0


class ServerGoneError(Exception):
    """The server refused the connection: it is not running any more."""


def _error_message(payload: Any) -> str | None:
    if isinstance(payload, dict) and "error" in payload:
        err = payload["error"]
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return None


async def _one_request(
    http: aiohttp.ClientSession,
    url: str,
    prompt: Prompt,
    load: LoadSpec,
    engine: EngineAdapter,
    max_new_tokens: int,
    claims: ClaimContext,
) -> RequestRecord:
    """Send one streaming request and time it; failures become ``record.error``,
    claims that do not hold (``claims``) included."""
    record = new_record(prompt, load)
    state = _StreamState(meta={})
    t0 = time.perf_counter()

    def on_event(chunk: Any, now: float) -> str | None:
        return _absorb_chunk(state, chunk, now, record.itl_ms)

    payload = generate_payload(prompt, max_new_tokens)
    state.done = await stream_events(http, url, payload, load, record, on_event)
    end = time.perf_counter()
    if state.sim:
        t0 = state.sim_admitted
        end = state.arrivals.last_at if state.arrivals.last_at is not None else t0
        record.started_at = t0
    stats = engine.request_stats(state.meta)
    if record.error is None:
        record.error = stats.aborted
    if record.error is None and not state.done:
        record.error = NO_DONE
    _fill(record, state, stats, t0, end)
    if record.error is None and state.arrivals.first_at is None:
        record.error = "the stream ended without any token"
    claims.check(
        engine,
        record,
        stats,
        streamed_tokens=state.completion_tokens,
        max_new_tokens=max_new_tokens,
        first_at=state.arrivals.first_at,
        last_at=state.arrivals.last_at,
    )
    return record


def _absorb_chunk(state: _StreamState, chunk: Any, now: float, itl: list[float]) -> str | None:
    """Take one native chunk into ``state``; an error that ends the request, or None.

    Raises ValueError for a chunk whose fields are not what SGLang sends.
    """
    message = _error_message(chunk)
    if message is not None:
        return f"server error: {printable(message)}"
    if not isinstance(chunk, dict):
        raise ValueError(f"a stream chunk is a JSON {type(chunk).__name__}")
    meta = chunk.get("meta_info") or {}
    if not isinstance(meta, dict):
        raise ValueError("meta_info is not an object")
    problem = meta_problem(meta)
    if problem is not None:
        return problem
    state.meta = meta
    tokens = as_count(meta.get("completion_tokens", state.completion_tokens))
    if tokens is None:
        raise ValueError("meta_info.completion_tokens is not a count")
    if isinstance(chunk.get("text"), str):
        state.text = chunk["text"]
    new = tokens - state.completion_tokens
    if new <= 0:
        return None
    state.arrivals.add(new, _chunk_time(state, meta, now), itl)
    state.completion_tokens = tokens
    return None


def _sim_seconds(meta: dict[str, Any], name: str) -> float | None:
    value = meta.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _chunk_time(state: _StreamState, meta: dict[str, Any], wall: float) -> float:
    """When this chunk's tokens were produced: the server's virtual clock when the
    request is timed on it, else the client's wall clock ``wall``."""
    clock = _sim_seconds(meta, "specbench_sim_clock_s")
    if state.sim is None:
        admitted = _sim_seconds(meta, "specbench_sim_admitted_s")
        state.sim = clock is not None and admitted is not None and clock >= admitted
        if state.sim and admitted is not None:
            state.sim_admitted = admitted
    if not state.sim:
        return wall
    if clock is None or clock < state.sim_admitted:
        raise ValueError("a simulated chunk lacks a valid specbench_sim_clock_s")
    return clock


def _fill(
    record: RequestRecord, state: _StreamState, stats: RequestStats, t0: float, end: float
) -> None:
    record.completion_tokens = state.completion_tokens
    record.output_sha256 = hashlib.sha256(state.text.encode("utf-8")).hexdigest()
    record.output_head = state.text[:OUTPUT_HEAD_CHARS]
    if stats.spec_accept_histogram is not None:
        record.spec_accept_histogram = stats.spec_accept_histogram
    if stats.prompt_tokens is not None:
        record.prompt_tokens = stats.prompt_tokens
    if stats.spec_verify_ct is not None:
        record.spec_verify_ct = stats.spec_verify_ct
    if stats.spec_accept_length is not None:
        record.spec_accept_length = stats.spec_accept_length
    if stats.simulated:
        record.simulated = True
    record.server_e2e_ms = stats.server_e2e_ms
    state.arrivals.fill(record, t0)
    if record.error is None:
        record.e2e_ms = (end - t0) * 1000.0


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
    (native or OpenAI API, claims checked) and the delivery-jitter context."""

    http: aiohttp.ClientSession
    endpoint: str
    send: RequestSender
    claims: ClaimContext


@contextlib.asynccontextmanager
async def open_client(
    endpoint: str, load: LoadSpec, engine: EngineAdapter, config: SpecConfig | None
) -> AsyncIterator[Client]:
    """The client both load shapes (closed loop here, open loop in open_loop_client)
    send through: the served model read once, round trips timed, the event loop's
    lateness watched while the load runs."""
    endpoint = endpoint.rstrip("/")
    url = endpoint + "/generate"
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, read_bufsize=READ_BUFSIZE, trace_configs=[connect_trace_config()]
    ) as http:
        model = ""
        if engine.api == "openai":
            try:
                model = await served_model(http, endpoint)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                raise ServerError(
                    f"cannot read the served model of {endpoint}: {printable(str(exc))}"
                ) from None

        claims = ClaimContext(config)

        async def send(prompt: Prompt, tokens: int) -> RequestRecord:
            try:
                if engine.api == "openai":
                    return await openai_request(
                        http, endpoint, model, prompt, load, engine, tokens, claims
                    )
                return await _one_request(http, url, prompt, load, engine, tokens, claims)
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
    "generate_payload",
    "open_client",
    "request_id",
    "run_closed_loop",
    "run_closed_loop_async",
    "server_reachable",
    "stall_after_s",
    "warm_up",
]
