"""Connection time per request, from aiohttp's tracing hooks."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from specbench.harness.connect_timing import ConnectTimer, connect_trace_config


async def _measure() -> tuple[float, float]:
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(trace_configs=[connect_trace_config()]) as http:
            first, second = ConnectTimer(), ConnectTimer()
            for timer in (first, second):
                async with http.get(f"http://127.0.0.1:{port}/", trace_request_ctx=timer) as r:
                    await r.read()
            return first.connect_ms, second.connect_ms
    finally:
        await runner.cleanup()


def test_new_connection_is_timed_and_a_reused_one_costs_nothing() -> None:
    first, second = asyncio.run(_measure())
    assert first > 0.0
    assert second == 0.0
