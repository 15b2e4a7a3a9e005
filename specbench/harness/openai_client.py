"""One streamed request to an OpenAI-compatible server (vLLM's ``/v1/completions``).

The request mirrors what vLLM's own ``benchmarks/serve`` client sends: greedy
(temperature 0), ``ignore_eos`` so every request produces exactly ``max_tokens``, and
``stream_options.include_usage`` so the last chunk carries the token counts (and, with
``--per-request-spec-decode-metrics``, ``metrics.speculative_decoding``). A dataset
prompt given as messages, or every prompt when the user asks for the chat template,
goes to ``/v1/chat/completions`` so the server applies the model's template.

Token counting: ``return_token_ids`` (a vLLM extension) makes each chunk list the ids it
brings, so a chunk that releases several speculated tokens is counted as several; a
server without the extension is counted one token per content chunk. Either way the
final count is the usage chunk's ``completion_tokens``. ITL follows the same rule as
the native client: a chunk of n tokens after a gap g gives n entries of g / n.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from specbench.errors import ServerError
from specbench.harness.backend import LoadSpec
from specbench.harness.claims import ClaimContext
from specbench.harness.engine import EngineAdapter, RequestSender, RequestStats
from specbench.harness.prompts import Prompt
from specbench.harness.sse_request import (
    CONNECT_TIMEOUT_S,
    TokenArrivals,
    new_record,
    stream_events,
)
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable

COMPLETIONS_PATH = "/v1/completions"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
#: Characters of the output kept in each record for showing a divergence.
OUTPUT_HEAD_CHARS = 200


def uses_chat(prompt: Prompt, load: LoadSpec) -> bool:
    return prompt.chat or load.chat_template


def openai_payload(prompt: Prompt, max_tokens: int, model: str, chat: bool) -> dict[str, Any]:
    """The body of one streamed greedy request."""
    body: dict[str, Any] = {"model": model}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt.text}]
    else:
        body["prompt"] = prompt.text
    body.update(
        max_tokens=max_tokens,
        temperature=0.0,
        ignore_eos=True,
        stream=True,
        stream_options={"include_usage": True},
        return_token_ids=True,
    )
    return body


@dataclass
class ChunkReading:
    """What one SSE chunk brought: tokens, text, and the usage chunk's fields."""

    tokens: int = 0
    text: str = ""
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    #: The tokens were counted from token ids (False: one per content chunk).
    exact: bool = True


def read_chunk(chunk: Any) -> ChunkReading:
    """Parse one ``data:`` object of a completions or chat-completions stream."""
    if not isinstance(chunk, Mapping):
        raise ValueError(f"a stream chunk is a JSON {type(chunk).__name__}")
    if "error" in chunk:
        err = chunk["error"]
        message = err.get("message", err) if isinstance(err, Mapping) else err
        return ChunkReading(error=f"server error: {printable(str(message))}")
    out = ChunkReading()
    if isinstance(chunk.get("usage"), Mapping):
        out.final = {"usage": chunk["usage"], "metrics": chunk.get("metrics") or {}}
    choices = chunk.get("choices") or []
    if not isinstance(choices, list) or not choices:
        return out
    choice = choices[0]
    if not isinstance(choice, Mapping):
        raise ValueError("a choice is not an object")
    delta = choice.get("delta")  # chat; its first chunk only announces the role
    text = delta.get("content") if isinstance(delta, Mapping) else choice.get("text")
    out.text = text if isinstance(text, str) else ""
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        out.tokens = len(ids)
    elif text is not None and (out.text or choice.get("finish_reason") is None):
        # No ids: one token per content chunk (a token may decode to "").
        out.tokens = 1 if not (isinstance(delta, Mapping) and "role" in delta) else 0
        out.exact = False
    return out


@dataclass
class _Stream:
    tokens: int = 0
    text: list[str] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)
    arrivals: TokenArrivals = field(default_factory=TokenArrivals)
    done: bool = False
    #: False once a chunk with tokens came without token ids (counted one per chunk).
    exact: bool = True


def _absorb(stream: _Stream, reading: ChunkReading, now: float, itl: list[float]) -> None:
    if reading.final:
        stream.final = reading.final
    stream.text.append(reading.text)
    if reading.tokens and not reading.exact:
        stream.exact = False
    stream.arrivals.add(reading.tokens, now, itl)
    stream.tokens += reading.tokens


async def served_model(http: aiohttp.ClientSession, endpoint: str) -> str:
    """The name requests must use (``--served-model-name``, else the model path)."""
    timeout = aiohttp.ClientTimeout(total=30.0, connect=CONNECT_TIMEOUT_S)
    async with http.get(endpoint + MODELS_PATH, timeout=timeout) as resp:
        data = await resp.json(content_type=None)
    models = data.get("data") if isinstance(data, Mapping) else None
    if not models or not isinstance(models[0], Mapping) or "id" not in models[0]:
        raise ValueError(f"{endpoint}{MODELS_PATH} lists no model")
    return str(models[0]["id"])


async def openai_sender(
    http: aiohttp.ClientSession,
    endpoint: str,
    load: LoadSpec,
    engine: EngineAdapter,
    claims: ClaimContext,
) -> RequestSender:
    """One request at a time through ``openai_request``, under the model name the
    server serves (read once); ServerError when the server names none."""
    try:
        model = await served_model(http, endpoint)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise ServerError(
            f"cannot read the served model of {endpoint}: {printable(str(exc))}"
        ) from None

    async def send(prompt: Prompt, max_new_tokens: int) -> RequestRecord:
        return await openai_request(
            http, endpoint, model, prompt, load, engine, max_new_tokens, claims
        )

    return send


async def openai_request(
    http: aiohttp.ClientSession,
    endpoint: str,
    model: str,
    prompt: Prompt,
    load: LoadSpec,
    engine: EngineAdapter,
    max_new_tokens: int,
    claims: ClaimContext | None = None,
) -> RequestRecord:
    """Send one streamed request and time it; failures become ``record.error``.

    A stream that ends before ``data: [DONE]`` failed (a killed vLLM server closes its
    streams cleanly, without the usage chunk), so EOF without [DONE] is an error. A
    refused connection raises aiohttp.ClientConnectorError: the server is gone.
    """
    record = new_record(prompt, load)
    chat = uses_chat(prompt, load)
    url = endpoint + (CHAT_PATH if chat else COMPLETIONS_PATH)
    stream = _Stream()

    def on_event(chunk: Any, now: float) -> str | None:
        reading = read_chunk(chunk)
        if reading.error is None:
            _absorb(stream, reading, now, record.itl_ms)
        return reading.error

    t0 = time.perf_counter()
    payload = openai_payload(prompt, max_new_tokens, model, chat)
    stream.done = await stream_events(http, url, payload, load, record, on_event)
    end = time.perf_counter()
    if record.error is None and not stream.done:
        record.error = "connection lost mid-response: the stream ended before [DONE]"
    stats = _fill(record, stream, engine, t0, end)
    (claims or ClaimContext()).check(
        engine,
        record,
        stats,
        streamed_tokens=stream.tokens,
        max_new_tokens=max_new_tokens,
        first_at=stream.arrivals.first_at,
        last_at=stream.arrivals.last_at,
        streamed_is_exact=stream.exact,
    )
    return record


def _fill(
    record: RequestRecord, stream: _Stream, engine: EngineAdapter, t0: float, end: float
) -> RequestStats:
    stats = engine.request_stats(stream.final)
    record.completion_tokens = (
        stats.completion_tokens if stats.completion_tokens is not None else stream.tokens
    )
    record.prompt_tokens = stats.prompt_tokens or 0
    record.spec_verify_ct = stats.spec_verify_ct
    record.spec_accept_length = stats.spec_accept_length
    record.spec_accepted_tokens = stats.spec_accepted_tokens
    record.spec_accept_histogram = stats.spec_accept_histogram
    text = "".join(stream.text)
    record.output_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    record.output_head = text[:OUTPUT_HEAD_CHARS]
    stream.arrivals.fill(record, t0)
    if record.error is None and stream.arrivals.first_at is None:
        record.error = "the stream ended without any token"
    if record.error is None:
        record.e2e_ms = (end - t0) * 1000.0
    if record.error is None and stats.completion_tokens is None:
        record.error = "the stream ended without a usage chunk (no token count)"
    return stats


__all__ = [
    "CHAT_PATH",
    "COMPLETIONS_PATH",
    "ChunkReading",
    "openai_payload",
    "openai_request",
    "openai_sender",
    "read_chunk",
    "served_model",
]
