"""SGLang's native wire protocol: one streamed ``POST /generate`` request, timed.

Requests use temperature 0 and ``ignore_eos`` so that every configuration generates the
same number of tokens for the same prompt. Token counts come from
``meta_info.completion_tokens`` (cumulative in every chunk), never from the text, which
the client does not tokenize. The speculative counters (``spec_verify_ct``,
``spec_accept_length``) are read from the last chunk: current SGLang sends them only
with the finishing chunk, older releases with every chunk. A stream that ends with
``finish_reason.type == "abort"`` is a failed request, and so is one that ends without
``data: [DONE]`` or reports impossible statistics (NaN, negative or fractional counts:
see stream_checks). Nothing a server sends reaches an error message unescaped
(safe_text.printable).

A simulated server (serve-sim) stamps every chunk with its virtual clock; its requests
are timed on that clock instead (``started_at`` is then the admission time on it), so
that what is measured is the model and not the host's event-loop overhead at a
compressed ``--time-scale``.

The SGLang adapter (and the simulator's, which speaks the same protocol through
serve-sim) hands :func:`native_request` to the load generator; the load generator
itself knows no engine's protocol.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from specbench.harness.backend import LoadSpec
from specbench.harness.claims import ClaimContext
from specbench.harness.engine import EngineAdapter, RequestStats
from specbench.harness.openai_client import OUTPUT_HEAD_CHARS
from specbench.harness.prompts import Prompt
from specbench.harness.sse_request import TokenArrivals, new_record, stream_events
from specbench.harness.stream_checks import NO_DONE, as_count, meta_problem
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable

#: The route a native request goes to.
GENERATE_PATH = "/generate"


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


def _error_message(payload: Any) -> str | None:
    if isinstance(payload, dict) and "error" in payload:
        err = payload["error"]
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return None


async def native_request(
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


__all__ = ["GENERATE_PATH", "generate_payload", "native_request", "request_id"]
