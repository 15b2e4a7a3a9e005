"""Shared helpers of the tests/test_harness_server_*.py files (launch, faults, cleanup)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from specbench.harness.backend import LoadSpec
from specbench.harness.prompts import Prompt, builtin_prompts

TARGET = "minimax-m2.7"
HARDWARE = "h200-nvlink"

#: Run a command after writing the wrapper's process group id (the launcher starts the
#: group; its leader is specbench's guardian) to a file, so a test can check the whole group.
PIDFILE_WRAPPER = (
    "import os, sys; open(sys.argv[1], 'w').write(str(os.getpgrp())); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def wrap_with_pidfile(pidfile: Path, command: str) -> str:
    """A launch_cmd that records the group id, then runs ``command``."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(PIDFILE_WRAPPER)} {shlex.quote(str(pidfile))} {command}"


def serve_sim_launch_cmd(pidfile: Path, *, time_scale: float = 0.02, extra: str = "") -> str:
    cmd = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target {TARGET} "
        f"--hardware {HARDWARE} --time-scale {time_scale} {extra} --sglang-args {{args}}"
    )
    return wrap_with_pidfile(pidfile, cmd)


def read_pid(pidfile: Path, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(pidfile.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{pidfile} never written")


def group_exists(pgid: int) -> bool:
    """True while a process of the group runs; zombies awaiting reaping by PID 1 (which
    can take a second in containers) hold nothing and do not count."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
    return False


def assert_group_gone(pgid: int, timeout_s: float = 2.0) -> None:
    """No running process of the group is left."""
    deadline = time.monotonic() + timeout_s
    while group_exists(pgid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} is still alive")
        time.sleep(0.02)


def prompts(n: int) -> list[Prompt]:
    """n built-in prompts spread over the domains."""
    allp = builtin_prompts()
    by_domain: dict[str, list[Prompt]] = {}
    for p in allp:
        by_domain.setdefault(p.domain, []).append(p)
    mixed = [p for group in zip(*by_domain.values(), strict=False) for p in group]
    return mixed[:n]


def small_load(
    n: int = 6, concurrency: int = 2, max_new_tokens: int = 16, **kw: object
) -> LoadSpec:
    return LoadSpec(
        concurrency=concurrency,
        prompts=prompts(n),
        max_new_tokens=max_new_tokens,
        warmup_requests=kw.pop("warmup_requests", 1),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


class FaultServer:
    """A tiny SGLang look-alike whose /generate misbehaves on purpose.

    modes: "ok" (streams 4 tokens), "500", "hang" (never answers), "sse-error" (an
    SGLang-style error chunk), "cut" (closes the connection mid-stream), "abort" (2
    tokens, then SGLang's abort finish_reason and a normal [DONE]), "long" (a final
    cumulative chunk of about 600 KB, as SGLang sends for a 60k-token answer), "not-object"
    (a chunk that is JSON but not an object), "final-spec" (spec_verify_ct only in a
    final chunk that brings no new token, as current SGLang sends it), "claims" (streams
    ``tokens`` tokens one per chunk, then a finishing chunk whose meta_info is SGLang's
    with ``finish`` laid over it: a server whose claims can be anything; ``pause_s``
    between the first token and the rest).
    ``server_info`` is served at /server_info when given.
    """

    def __init__(
        self,
        mode: str,
        *,
        tokens: int = 32,
        finish: dict[str, object] | None = None,
        server_info: dict[str, object] | None = None,
        pause_s: float = 0.0,
    ) -> None:
        self.mode = mode
        self.pause_s = pause_s
        self.tokens = tokens
        self.finish = finish or {}
        self.server_info = server_info
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "500":
            return web.Response(status=500, text="Internal Server Error: injected fault")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if self.mode == "sse-error":
            await resp.write(b'data: {"error": {"message": "injected failure"}}\n\n')
            await resp.write(b"data: [DONE]\n\n")
            return resp
        if self.mode in ("abort", "long", "not-object", "final-spec"):
            await resp.write(_special_stream(self.mode))
            return resp
        if self.mode == "claims":
            await self._claims_stream(resp)
            return resp
        for i in range(1, 5):
            meta = f'{{"completion_tokens": {i}, "prompt_tokens": 3, "spec_verify_ct": {i}}}'
            await resp.write(b'data: {"text": "x", "meta_info": ' + meta.encode() + b"}\n\n")
            if self.mode == "cut" and i == 2:
                assert request.transport is not None
                request.transport.close()
                return resp
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def _claims_stream(self, resp: web.StreamResponse) -> None:
        """SGLang's stream shape: cumulative text and count, the counters and
        e2e_latency on the finishing chunk (tokenizer_manager.py), then [DONE]."""
        started = time.monotonic()
        for i in range(1, self.tokens + 1):
            meta = {"prompt_tokens": 3, "completion_tokens": i, "finish_reason": None}
            await resp.write(_sse({"text": "t" * i, "meta_info": meta}))
            await asyncio.sleep(self.pause_s if i == 1 else 0.0)
        final: dict[str, object] = {
            "prompt_tokens": 3,
            "completion_tokens": self.tokens,
            "finish_reason": {"type": "length", "length": self.tokens},
            "spec_verify_ct": max(1, self.tokens // 2),
            "e2e_latency": time.monotonic() - started,
        }
        final.update(self.finish)
        await resp.write(_sse({"text": "t" * self.tokens, "meta_info": final}))
        await resp.write(b"data: [DONE]\n\n")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _server_info(self, request: web.Request) -> web.Response:
        if self.server_info is None:
            return web.Response(status=404)
        return web.json_response(self.server_info)

    async def _main(self) -> None:
        app = web.Application()
        app.router.add_post("/generate", self._generate)
        app.router.add_get("/health", self._health)
        app.router.add_get("/health_generate", self._health)
        app.router.add_get("/server_info", self._server_info)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> FaultServer:
        def run() -> None:
            self._loop = loop = asyncio.new_event_loop()
            loop.run_until_complete(self._main())
            pending = asyncio.all_tasks(loop)  # handlers still hanging in "hang" mode
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        assert self._thread is not None
        self._thread.join(10)


def _sse(chunk: object) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _special_stream(mode: str) -> bytes:
    """The whole body of one of FaultServer's SGLang-shaped special streams."""
    meta: dict[str, object] = {"prompt_tokens": 3, "finish_reason": None}
    if mode == "abort":
        chunks: list[object] = [
            {"text": "a", "meta_info": {**meta, "completion_tokens": 1}},
            {"text": "a b", "meta_info": {**meta, "completion_tokens": 2}},
            {
                "text": "a b",
                "meta_info": {
                    **meta,
                    "completion_tokens": 2,
                    "finish_reason": {"type": "abort", "message": "KV cache is full"},
                },
            },
        ]
    elif mode == "long":
        n = 60_000
        chunks = [
            {"text": "a", "output_ids": [7], "meta_info": {**meta, "completion_tokens": 1}},
            {
                "text": "a " * n,
                "output_ids": [123456] * n,
                "meta_info": {**meta, "completion_tokens": n, "finish_reason": {"type": "length"}},
            },
        ]
    elif mode == "not-object":
        chunks = [{"text": "a", "meta_info": {**meta, "completion_tokens": 1}}, [1, 2]]
    else:  # final-spec
        chunks = [
            {"text": "a", "meta_info": {**meta, "completion_tokens": 1}},
            {"text": "a b c d", "meta_info": {**meta, "completion_tokens": 4}},
            {
                "text": "a b c d",
                "meta_info": {
                    **meta,
                    "completion_tokens": 4,
                    "finish_reason": {"type": "length", "length": 4},
                    "spec_verify_ct": 2,
                    "spec_accept_length": 2.0,
                },
            },
        ]
    return b"".join(_sse(c) for c in chunks) + b"data: [DONE]\n\n"


@contextlib.contextmanager
def in_thread_serve_sim(**options: object) -> Iterator[str]:
    """serve-sim in a background thread of this process; yields its endpoint."""
    from specbench.harness.net import free_port
    from specbench.serve_sim.app import serve_async
    from specbench.serve_sim.options import resolve_options

    port = free_port()
    opts = resolve_options(target=TARGET, hardware=HARDWARE, port=port, **options)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    errors: list[BaseException] = []

    class _Out:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

        def flush(self) -> None:
            pass

    out = _Out()

    def run() -> None:
        try:
            loop.run_until_complete(serve_async(opts, out=out, stop=stop))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while "ready to roll" not in out.text:
        if errors:
            raise errors[0]
        assert time.monotonic() < deadline, out.text
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
