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


__all__ = ["CONNECT_TIMEOUT_S", "EventHandler", "new_record", "stream_events"]
