"""The OpenAI-compatible streaming client against a replay of recorded vLLM streams."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from specbench.errors import ServerError
from specbench.harness.backend import LoadSpec
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.metrics import summarize
from specbench.harness.prompts import Prompt
from specbench.harness.vllm import VLLM

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm"
#: The request bodies the replay server received.
SEEN = web.AppKey("seen", list)


def _with_token_ids(stream: str) -> list[bytes]:
    """The recorded stream with the token ids vLLM adds on ``return_token_ids``: the
    fixture's 24 tokens are 1 (prefill), 4 per verify step (k = 3), and 3 in the last
    chunk (max_tokens reached)."""
    out: list[bytes] = []
    first = True
    for line in stream.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[len("data: ") :])
            if chunk["choices"]:
                choice = chunk["choices"][0]
                n = 1 if first else (3 if choice.get("finish_reason") else 4)
                choice["token_ids"] = list(range(n))
                first = False
            line = "data: " + json.dumps(chunk)
        out.append((line + "\n").encode())
    return out


def _coalesced(lines: list[bytes]) -> list[bytes]:
    """The same answer as a CPU-starved vLLM API server sends it: every token in one
    chunk, then the usage chunk."""
    chunks = [json.loads(line[len("data: ") :]) for line in lines if line.startswith(b"data: {")]
    content = [c for c in chunks if c["choices"]]
    merged = content[-1]
    merged["choices"][0]["text"] = "".join(c["choices"][0]["text"] for c in content)
    merged["choices"][0]["token_ids"] = list(range(24))
    usage = [c for c in chunks if not c["choices"]]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in [merged, *usage]] + [b"data: [DONE]\n\n"]


def _app(
    stream_file: str, *, cut_after: int | None = None, coalesce: bool = False
) -> web.Application:
    lines = _with_token_ids((DATA / stream_file).read_text())
    if coalesce:
        lines = _coalesced(lines)
    models = (DATA / "eagle3-k3.models.json").read_text().splitlines()[-1]
    seen: list[dict[str, object]] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        seen.append(await request.json())
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for index, line in enumerate(lines):
            if cut_after is not None and index >= cut_after:
                break  # a killed server: EOF without usage or [DONE]
            await resp.write(line)
            await asyncio.sleep(0.001)
        await resp.write_eof()
        return resp

    async def model_list(request: web.Request) -> web.Response:
        return web.Response(text=models, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app[SEEN] = seen
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", model_list)
    app.router.add_get("/health", health)
    return app


@pytest.fixture
def serve() -> Iterator[object]:
    runners: list[tuple[asyncio.AbstractEventLoop, web.AppRunner]] = []

    def start(app: web.Application) -> str:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        threading.Thread(target=loop.run_forever, daemon=True).start()
        runners.append((loop, runner))
        return f"http://127.0.0.1:{port}"

    yield start
    for loop, runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)


PROMPTS = [Prompt("count-0", "chat", "3 4 5 6 7 8"), Prompt("chat-1", "chat", "hi", chat=True)]


def test_records_carry_tokens_stats_itl_and_output(serve) -> None:  # type: ignore[no-untyped-def]
    app = _app("eagle3-k3.completions.stream.txt")
    url = serve(app)
    load = LoadSpec(concurrency=2, prompts=PROMPTS, max_new_tokens=24, warmup_requests=0)
    records = run_closed_loop(url, load, engine=VLLM)
    assert len(records) == 2 and all(r.ok for r in records)
    for record in records:
        assert record.completion_tokens == 24 and record.prompt_tokens == 6
        assert record.spec_verify_ct == 6 and record.spec_accepted_tokens == 18
        assert len(record.itl_ms) == 23  # one entry per token after the first
        assert record.output_head is not None and record.output_head.startswith("\nrepeat::")
        assert record.output_sha256 is not None
    assert summarize(records).tau == pytest.approx(4.0)
    bodies = app[SEEN]
    assert {("messages" in b) for b in bodies} == {True, False}
    assert all(b["model"] == "tiny-llama" and b["ignore_eos"] is True for b in bodies)


def test_a_coalesced_stream_has_no_decode_speed(serve) -> None:  # type: ignore[no-untyped-def]
    """All 24 tokens in one chunk: TTFT is the whole wait and no decode speed was seen
    (not 23 tokens over the microseconds between that chunk and [DONE])."""
    url = serve(_app("eagle3-k3.completions.stream.txt", coalesce=True))
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=24, warmup_requests=0)
    (record,) = run_closed_loop(url, load, engine=VLLM)
    assert record.ok and record.completion_tokens == 24 and record.first_chunk_tokens == 24
    assert record.itl_ms == [0.0] * 23
    assert record.output_tokens_per_s is None
    assert summarize([record]).tau == pytest.approx(4.0)


def test_stream_cut_before_done_is_a_failed_request(serve) -> None:  # type: ignore[no-untyped-def]
    url = serve(_app("eagle3-k3.completions.stream.txt", cut_after=4))
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=24, warmup_requests=0)
    (record,) = run_closed_loop(url, load, engine=VLLM)
    assert record.error is not None and "before [DONE]" in record.error


def test_unreachable_server_is_a_server_error() -> None:
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=8, warmup_requests=0)
    with pytest.raises(ServerError):
        run_closed_loop("http://127.0.0.1:9", load, engine=VLLM)


def test_warm_up_has_its_own_budget_and_the_counters_are_read_after_it(serve) -> None:  # type: ignore[no-untyped-def]
    app = _app("eagle3-k3.completions.stream.txt")
    url = serve(app)
    load = LoadSpec(
        concurrency=1,
        prompts=PROMPTS[:1],
        max_new_tokens=24,
        warmup_requests=1,
        warmup_max_new_tokens=5,
    )
    requests_at_start: list[int] = []
    (record,) = run_closed_loop(
        url, load, engine=VLLM, on_measure_start=lambda: requests_at_start.append(len(app[SEEN]))
    )
    bodies = app[SEEN]
    assert requests_at_start == [1]  # after the warm-up request, before the measured one
    assert [b["max_tokens"] for b in bodies] == [load.warmup_tokens, 24]
    assert record.ok and record.connect_ms is not None and record.connect_ms >= 0
