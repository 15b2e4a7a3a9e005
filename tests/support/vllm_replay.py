"""A replay of recorded vLLM streams: the OpenAI-compatible protocol test server.

It serves the completions/chat stream a real vLLM recorded (tests/data/vllm), its
/v1/models and /health, so the OpenAI client and the engine contract tests run vLLM's
wire protocol without vLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm"
#: The request bodies the replay server received.
SEEN = web.AppKey("seen", list)


def with_token_ids(stream: str) -> list[bytes]:
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


def coalesced(lines: list[bytes]) -> list[bytes]:
    """The same answer as a CPU-starved vLLM API server sends it: every token in one
    chunk, then the usage chunk."""
    chunks = [json.loads(line[len("data: ") :]) for line in lines if line.startswith(b"data: {")]
    content = [c for c in chunks if c["choices"]]
    merged = content[-1]
    merged["choices"][0]["text"] = "".join(c["choices"][0]["text"] for c in content)
    merged["choices"][0]["token_ids"] = list(range(24))
    usage = [c for c in chunks if not c["choices"]]
    return [f"data: {json.dumps(c)}\n\n".encode() for c in [merged, *usage]] + [b"data: [DONE]\n\n"]


def replay_app(
    stream_file: str, *, cut_after: int | None = None, coalesce: bool = False
) -> web.Application:
    lines = with_token_ids((DATA / stream_file).read_text())
    if coalesce:
        lines = coalesced(lines)
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


class Servers:
    """Starts apps on free loopback ports, each on its own event loop thread."""

    def __init__(self) -> None:
        self.runners: list[tuple[asyncio.AbstractEventLoop, web.AppRunner]] = []

    def __call__(self, app: web.Application) -> str:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        threading.Thread(target=loop.run_forever, daemon=True).start()
        self.runners.append((loop, runner))
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for loop, runner in self.runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """A Servers whose apps are all stopped on exit."""
    started = Servers()
    try:
        yield started
    finally:
        started.close()
