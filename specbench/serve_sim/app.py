"""serve-sim's HTTP side: SGLang's native routes over the scheduler, and the serve loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from aiohttp import web

from specbench.errors import BadInputError
from specbench.harness.net import check_port_free
from specbench.harness.prompts import estimate_tokens
from specbench.model import (
    PerformanceModel,
)
from specbench.serve_sim.scheduler import (
    DEFAULT_MAX_NEW_TOKENS,
    FILLER_WORDS,
    MAX_NEW_TOKENS,
    READY_LINE,
    SIM_HEADER,
    SimRequest,
    SimServer,
    SimServerOptions,
    filler_id,
    filler_ids,
    filler_text,
    guess_domain,
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": {"message": message}, "specbench_simulated": True}, status)


def build_app(server: SimServer) -> web.Application:
    """The aiohttp application: SGLang's native routes, all labelled simulated."""

    @web.middleware
    async def label(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[SIM_HEADER] = "true"
            raise
        if not response.prepared:
            response.headers[SIM_HEADER] = "true"
        return response

    async def health(request: web.Request) -> web.Response:
        if not server.ready:
            return web.Response(status=503, text="starting (simulated)\n")
        return web.Response(status=200, text="ok (simulated)\n")

    async def server_info(request: web.Request) -> web.Response:
        return _json(server.server_info())

    async def model_info(request: web.Request) -> web.Response:
        return _json(
            {
                "model_path": server.options.target.model_path,
                "is_generation": True,
                "specbench_simulated": True,
            }
        )

    async def flush_cache(request: web.Request) -> web.Response:
        if not server.flush():
            return web.Response(
                status=400,
                text="Cache not flushed: requests are pending (simulated server).\n",
            )
        return web.Response(status=200, text="Cache flushed (simulated server).\n")

    async def clock(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("follow_wall"), bool):
            return _error('expected {"follow_wall": true|false}', 400)
        behind = server.set_follow_wall(body["follow_wall"])
        return _json(
            {"follow_wall": server.follow_wall, "behind_s": behind, "specbench_simulated": True}
        )

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=server.metrics_text(), content_type="text/plain")

    async def generate(request: web.Request) -> web.StreamResponse:
        return await _generate(request, server)

    app = web.Application(middlewares=[label])
    app.router.add_get("/health", health)
    app.router.add_get("/health_generate", health)
    app.router.add_get("/server_info", server_info)
    app.router.add_get("/get_server_info", server_info)
    app.router.add_get("/get_model_info", model_info)
    app.router.add_get("/model_info", model_info)
    app.router.add_route("*", "/flush_cache", flush_cache)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/specbench/clock", clock)
    app.router.add_post("/generate", generate)
    app.router.add_put("/generate", generate)
    return app


async def _generate(request: web.Request, server: SimServer) -> web.StreamResponse:
    """``/generate``: one prompt, answered at once or streamed like SGLang."""
    if not server.ready:
        return _error("the server is still starting", 503)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error("the request body is not JSON", 400)
    except RecursionError:
        return _error("the request body is nested too deeply", 400)
    if not isinstance(body, dict):
        return _error("the request body must be a JSON object", 400)
    text = body.get("text")
    input_ids = body.get("input_ids")
    if isinstance(text, str):
        prompt_tokens = estimate_tokens(text)
    elif isinstance(input_ids, list) and input_ids and not isinstance(input_ids[0], list):
        prompt_tokens = len(input_ids)
        text = ""
    else:
        return _error("serve-sim takes one prompt per request: 'text' must be a string", 400)
    params = body.get("sampling_params") or {}
    if not isinstance(params, dict):
        return _error("'sampling_params' must be an object", 400)
    max_new = params.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
        return _error("'max_new_tokens' must be a positive integer", 400)
    if max_new > MAX_NEW_TOKENS:
        return _error(
            f"'max_new_tokens' {max_new} exceeds this server's limit of {MAX_NEW_TOKENS}", 400
        )
    rid = body.get("rid")
    if rid is not None and not isinstance(rid, str):
        return _error("'rid' must be a string", 400)
    domain = guess_domain(rid, text, server.domains)
    rid = rid or server.next_rid()
    if server.is_known(rid):
        return _error(f"duplicate request id {rid!r}", 400)
    req = server.admit(rid, prompt_tokens, max_new, domain)
    try:
        if body.get("stream"):
            return await _stream(request, server, req)
        while not req.finished:
            await req.updates.get()
    finally:
        server.forget(rid)
    return _json(
        {
            "text": filler_text(req.completion_tokens),
            "output_ids": filler_ids(req.completion_tokens),
            "meta_info": server.meta_info(req),
        }
    )


async def _stream(request: web.Request, server: SimServer, req: SimRequest) -> web.StreamResponse:
    """SSE like SGLang: ``data: {json}`` per update with cumulative text and output
    ids, then [DONE]."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", SIM_HEADER: "true"})
    await response.prepare(request)
    words: list[str] = []
    ids: list[int] = []
    while True:
        finished = await req.updates.get()
        # Drain updates that piled up while the client was slow: one chunk per read.
        while not req.updates.empty():
            finished = req.updates.get_nowait() or finished
        while len(words) < req.completion_tokens:
            words.append(FILLER_WORDS[len(words) % len(FILLER_WORDS)])
            ids.append(filler_id(len(ids)))
        chunk = {"text": " ".join(words), "output_ids": ids, "meta_info": server.meta_info(req)}
        # A client that went away raises here; the engine finishes the request on its own.
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if finished or req.finished:
            break
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


# -- running the server ---------------------------------------------------------------------
def build_model(options: SimServerOptions) -> PerformanceModel:

    return PerformanceModel(options.target, options.hardware, seed=options.seed)


async def serve_async(
    options: SimServerOptions, *, out: TextIO | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); the port must be free."""
    out = out if out is not None else sys.stdout
    check_port_free(options.host, options.port)
    model = build_model(options)
    server = SimServer(options, model)
    app = build_app(server)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise BadInputError(
            f"port {options.port} is already in use on {options.host}"
            if "in use" in str(exc).lower() or getattr(exc, "errno", None) == 98
            else f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
        ) from None
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    scheduler = asyncio.ensure_future(server.scheduler())
    cfg = options.config
    cfg_text = "no speculation (baseline)" if cfg is None else f"{options.target.algorithm} {cfg}"
    print(
        f"specbench serve-sim (SIMULATED, no model is loaded): target {options.target.name}, "
        f"hardware {options.hardware.name}, {cfg_text}, time scale {options.time_scale:g}, "
        f"listening on http://{options.host}:{options.port}",
        file=out,
        flush=True,
    )
    try:
        # /health_generate answers 503 while the model tables are built, as SGLang does
        # while it loads weights and captures CUDA graphs.
        await loop.run_in_executor(None, server.warm_up)
        if options.startup_delay_s > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), options.startup_delay_s)
        if not stop.is_set():
            server.ready = True
            print(READY_LINE, file=out, flush=True)
            await stop.wait()
        print("specbench serve-sim: shutting down", file=out, flush=True)
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def serve(options: SimServerOptions) -> None:
    """Blocking entry point used by the CLI."""
    asyncio.run(serve_async(options))
