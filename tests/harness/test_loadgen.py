"""Broken streams and impossible statistics are failed requests with a reason; a hung
server shows up as stalled requests and ends at --request-timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web

from specbench.harness.backend import LoadSpec
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.prompts import builtin_prompts
from specbench.harness.stream_checks import NO_DONE


def _chunk(meta: str) -> bytes:
    return b'data: {"text": "x", "meta_info": ' + meta.encode() + b"}\n\n"


GOOD = _chunk('{"completion_tokens": 1}') + _chunk('{"completion_tokens": 4, "spec_verify_ct": 2}')
BODIES: dict[str, bytes] = {
    "ok": GOOD + b"data: [DONE]\n\n",
    "no-done": GOOD,
    "nan": _chunk('{"completion_tokens": 4, "spec_verify_ct": NaN}') + b"data: [DONE]\n\n",
    "inf": _chunk('{"completion_tokens": Infinity}') + b"data: [DONE]\n\n",
    "negative": _chunk('{"completion_tokens": -4}') + b"data: [DONE]\n\n",
    "text": _chunk('{"completion_tokens": "four"}') + b"data: [DONE]\n\n",
    "tau<1": _chunk('{"completion_tokens": 2, "spec_verify_ct": 5}') + b"data: [DONE]\n\n",
}


class ScriptedServer:
    """/generate answers with a fixed body ("hang": never answers)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "500-escapes":
            return web.Response(status=500, body=b"\x1b[2J\x1b]0;t\x07oops" * 100)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(BODIES[self.mode])
        await resp.write_eof()
        return resp

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_post("/generate", self._generate)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> str:
        def run() -> None:
            self._loop = loop = asyncio.new_event_loop()
            loop.run_until_complete(self._main())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.close()

        threading.Thread(target=run, daemon=True).start()
        assert self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)


@pytest.fixture
def load() -> LoadSpec:
    return LoadSpec(concurrency=2, prompts=builtin_prompts()[:3], max_new_tokens=4,
                    warmup_requests=0)  # fmt: skip


def test_a_complete_stream_is_a_success(load: LoadSpec) -> None:
    with ScriptedServer("ok") as endpoint:
        records = run_closed_loop(endpoint, load)
    assert all(r.ok and r.completion_tokens == 4 and r.spec_verify_ct == 2 for r in records)


def test_a_stream_without_done_is_a_failed_request(load: LoadSpec) -> None:
    with ScriptedServer("no-done") as endpoint:
        records = run_closed_loop(endpoint, load)
    assert records and all(r.error == NO_DONE for r in records)


@pytest.mark.parametrize(
    ("mode", "field"),
    [
        ("nan", "spec_verify_ct"),
        ("inf", "completion_tokens"),
        ("negative", "completion_tokens"),
        ("text", "completion_tokens"),
        ("tau<1", "spec_verify_ct 5 > completion_tokens 2"),
    ],
)
def test_impossible_statistics_are_a_failed_request(load: LoadSpec, mode: str, field: str) -> None:
    with ScriptedServer(mode) as endpoint:
        records = run_closed_loop(endpoint, load)
    assert len(records) == 3
    for record in records:
        assert record.error is not None and record.error.startswith("impossible meta_info")
        assert field in record.error


def test_an_error_body_is_escaped_and_cut(load: LoadSpec) -> None:
    with ScriptedServer("500-escapes") as endpoint:
        records = run_closed_loop(endpoint, load)
    error = records[0].error
    assert error is not None and error.startswith("HTTP 500: ")
    assert "\x1b" not in error and "\x07" not in error and len(error) < 300


def test_a_hung_server_is_reported_as_stalled_then_times_out() -> None:
    load = LoadSpec(concurrency=2, prompts=builtin_prompts()[:2], max_new_tokens=4,
                    warmup_requests=0, request_timeout_s=1.5)  # fmt: skip
    seen: list[tuple[int, float]] = []
    with ScriptedServer("hang") as endpoint:
        records = run_closed_loop(endpoint, load, on_stall=lambda n, s: seen.append((n, s)))
    assert [r.error for r in records] == ["timed out after 1.5 s"] * 2
    assert (2, 0.75) in seen  # both requests shown as stalled while they hung
    assert seen[-1][0] == 0  # cleared when the load ended
