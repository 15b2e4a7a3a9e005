"""One streamed HTTP request, read as server-sent events: the part both request dialects share.

SGLang's native ``/generate`` and the OpenAI-compatible routes differ in what a chunk
means, not in how a stream is read or how it fails. Reading and failure handling live
here once, so that a dead, slow or garbage-speaking server is told apart the same way
for every engine: a refused connection means the server is gone (the caller decides
what that does to the trial), anything else becomes the record's ``error`` and the run
goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from specbench.harness.backend import LoadSpec
from specbench.harness.connect_timing import ConnectTimer
from specbench.harness.prompts import Prompt
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable

#: Seconds to establish a connection; a live server accepts immediately, so anything
#: longer means it is gone or wedged.
CONNECT_TIMEOUT_S = 10.0

_DATA = b"data:"
_DONE = b"[DONE]"

#: Called with each event's parsed JSON and the time (``time.perf_counter``) its line
#: arrived; returns an error that ends the request, or None to read on. It may raise
#: ValueError or TypeError for a malformed event.
EventHandler = Callable[[Any, float], "str | None"]


def split_gap(gap_ms: float, new_tokens: int) -> list[float]:
    """ITL entries for a chunk that brought ``new_tokens`` tokens after ``gap_ms``."""
    if new_tokens <= 0:
        return []
    per_token = gap_ms / new_tokens
    return [per_token] * new_tokens


@dataclass
class TokenArrivals:
    """When a stream's tokens reached the client, kept the same way for every dialect.

    Tokens that come with the first chunk arrive at once (zero gaps); a later chunk of
    n tokens after a gap g gives n ITL entries of g / n, so ITL percentiles follow the
    speed tokens arrive at, not the server's stream interval.
    """

    first_at: float | None = None
    last_at: float | None = None
    #: How many tokens the first chunk with tokens carried.
    first_chunk_tokens: int = 0

    def add(self, new: int, now: float, itl_ms: list[float]) -> None:
        """``new`` tokens arrived at ``now`` (seconds, any monotonic clock)."""
        if new <= 0:
            return
        if self.first_at is None:
            self.first_at = now
            self.first_chunk_tokens = new
            itl_ms.extend([0.0] * (new - 1))
        else:
            assert self.last_at is not None
            itl_ms.extend(split_gap((now - self.last_at) * 1000.0, new))
        self.last_at = now

    def fill(self, record: RequestRecord, t0: float) -> None:
        """TTFT from ``t0`` (the request's start on the same clock) and the first chunk's
        size when it brought more than one token."""
        if self.first_at is not None:
            record.ttft_ms = (self.first_at - t0) * 1000.0
        if self.first_chunk_tokens > 1:
            record.first_chunk_tokens = self.first_chunk_tokens


def new_record(prompt: Prompt, load: LoadSpec) -> RequestRecord:
    """An empty record for a request about to be sent, stamped with its start time."""
    return RequestRecord(
        prompt_id=prompt.id,
        domain=prompt.domain,
        prompt_tokens=0,
        completion_tokens=0,
        spec_verify_ct=None,
        ttft_ms=None,
        e2e_ms=None,
        concurrency=load.concurrency,
        started_at=time.time(),
    )


async def stream_events(
    http: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    load: LoadSpec,
    record: RequestRecord,
    on_event: EventHandler,
) -> bool:
    """POST ``payload`` and hand each ``data:`` event to ``on_event``.

    Returns whether the stream ended with ``data: [DONE]``: a stream cut short is a
    failed request even when every chunk parsed. Failures are written to
    ``record.error``; only a refused connection raises (aiohttp.ClientConnectorError).
    """
    timeout = aiohttp.ClientTimeout(total=load.request_timeout_s, connect=CONNECT_TIMEOUT_S)
    connect = ConnectTimer()
    try:
        async with http.post(url, json=payload, timeout=timeout, trace_request_ctx=connect) as resp:
            record.connect_ms = connect.connect_ms
            if resp.status != 200:
                body = printable((await resp.content.read(4096)).strip(), 200)
                record.error = f"HTTP {resp.status}: {body}" if body else f"HTTP {resp.status}"
                return False
            async for raw in resp.content:
                if not raw.startswith(_DATA):
                    continue
                data = raw[len(_DATA) :].strip()
                if data == _DONE:
                    return True
                now = time.perf_counter()
                error = on_event(json.loads(data), now)
                if error is not None:
                    record.error = error
                    return False
    except asyncio.TimeoutError:
        record.error = f"timed out after {load.request_timeout_s:g} s"
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        record.error = f"connection lost mid-response: {type(exc).__name__}"
    except aiohttp.ClientError as exc:
        record.error = f"{type(exc).__name__}: {printable(str(exc))}"
    except (ValueError, TypeError, RecursionError, aiohttp.http_exceptions.BadHttpMessage) as exc:
        # malformed JSON or fields, or a line past even the client's read buffer
        record.error = f"malformed response: {printable(str(exc))}"
    return False


__all__ = [
    "CONNECT_TIMEOUT_S",
    "EventHandler",
    "TokenArrivals",
    "new_record",
    "split_gap",
    "stream_events",
]
