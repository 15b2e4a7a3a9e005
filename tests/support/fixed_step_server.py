"""An SGLang-protocol test server whose every decode step takes a FIXED time.

Each step lasts ``--step-ms`` whatever the batch holds, and gives every running request
``--tokens-per-step`` tokens: the server's throughput at concurrency c is exactly
``c * tokens_per_step / step`` and a speculative server's speedup over a baseline one is
the same at every concurrency. A measurement window that counts anything but the engine
(connection setup, the listen backlog, client-side queueing) shows up as a speedup that
drifts with concurrency. The finishing chunk carries ``meta_info.e2e_latency`` (arrival
to finish, seconds) as SGLang's tokenizer_manager.py does. ``--backlog`` sets the listen backlog (the kernel's accept
queue); a small one makes a burst of new connections wait, as a busy SGLang front end
does.

Speaks what the load generator uses of SGLang's native API (python/sglang/srt/
entrypoints/http_server.py): streaming ``POST /generate`` with cumulative
``meta_info.completion_tokens`` and, when speculating, ``spec_verify_ct`` on the
finishing chunk; ``GET /health``, ``/health_generate``, ``/server_info``;
``POST /flush_cache``.

    python tests/fixed_step_server.py --port 30000 --step-ms 10 --tokens-per-step 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class _Running:
    max_new_tokens: int
    created: float = field(default_factory=time.perf_counter)
    out: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    tokens: int = 0
    steps: int = 0


class FixedStepEngine:
    """A batch that advances by one step every ``step_s`` seconds, whatever its size."""

    def __init__(
        self, step_s: float, tokens_per_step: int, speculative: bool, stream_interval: int = 1
    ) -> None:
        self.step_s = step_s
        self.stream_interval = stream_interval
        self.tokens_per_step = tokens_per_step
        self.speculative = speculative
        self.running: dict[int, _Running] = {}
        self.waiting: dict[int, _Running] = {}
        self.next_id = 0
        self.steps = 0
        self.accepted_tokens = 0
        self.verify_steps = 0

    async def loop(self) -> None:
        """Run steps on a fixed clock; requests that arrived join at the next step."""
        next_tick = time.perf_counter()
        while True:
            # Never shorter than a step: after a late wake-up (a busy machine) the clock
            # restarts from now instead of catching up with back-to-back short steps.
            next_tick = max(next_tick + self.step_s, time.perf_counter())
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            self.running.update(self.waiting)
            self.waiting.clear()
            for rid, req in list(self.running.items()):
                new = min(self.tokens_per_step, req.max_new_tokens - req.tokens)
                req.tokens += new
                req.steps += 1
                self.accepted_tokens += new
                self.verify_steps += 1
                done = req.tokens >= req.max_new_tokens
                if not done and req.steps % self.stream_interval:
                    continue
                meta: dict[str, Any] = {"completion_tokens": req.tokens, "prompt_tokens": 8}
                if done:
                    meta["finish_reason"] = {"type": "length", "length": req.max_new_tokens}
                    meta["e2e_latency"] = time.perf_counter() - req.created
                    if self.speculative:
                        meta["spec_verify_ct"] = req.steps
                    del self.running[rid]
                req.out.put_nowait({"text": "x", "meta_info": meta})
                if done:
                    req.out.put_nowait(None)
            self.steps += 1

    def submit(self, max_new_tokens: int) -> _Running:
        req = _Running(max_new_tokens=max_new_tokens)
        self.waiting[self.next_id] = req
        self.next_id += 1
        return req

    def server_info(self, args: argparse.Namespace) -> dict[str, Any]:
        avg = self.accepted_tokens / self.verify_steps if self.verify_steps else None
        info: dict[str, Any] = {
            "version": "0.0.0-fixed-step",
            "model_path": "fixed-step",
            "tp_size": 1,
            "max_running_requests": args.max_running_requests,
            "cuda_graph_max_bs_decode": args.cuda_graph_max_bs_decode,
            "speculative_algorithm": "EAGLE3" if self.speculative else None,
            "internal_states": [{"avg_spec_accept_length": avg if self.speculative else None}],
        }
        if self.speculative:
            info.update(
                speculative_draft_model_path=args.draft_model_path,
                speculative_num_steps=self.tokens_per_step - 1,
                speculative_eagle_topk=1,
                speculative_num_draft_tokens=self.tokens_per_step,
            )
        return info


def build_app(engine: FixedStepEngine, args: argparse.Namespace) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def server_info(_: web.Request) -> web.Response:
        return web.json_response(engine.server_info(args))

    async def flush_cache(_: web.Request) -> web.Response:
        if engine.running or engine.waiting:
            return web.Response(status=400, text="requests pending")
        engine.accepted_tokens = engine.verify_steps = 0
        return web.Response(text="flushed")

    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        max_new = int(body.get("sampling_params", {}).get("max_new_tokens", 16))
        req = engine.submit(max_new)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        while (chunk := await req.out.get()) is not None:
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/health_generate", health)
    app.router.add_get("/server_info", server_info)
    app.router.add_post("/flush_cache", flush_cache)
    app.router.add_post("/generate", generate)
    return app


async def serve(args: argparse.Namespace) -> None:
    engine = FixedStepEngine(
        args.step_ms / 1000.0,
        args.tokens_per_step,
        args.tokens_per_step > 1,
        args.stream_interval,
    )
    runner = web.AppRunner(build_app(engine, args), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=args.backlog)
    await site.start()
    await engine.loop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--step-ms", type=float, default=10.0)
    parser.add_argument("--tokens-per-step", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=128)
    # SGLang's --stream-interval: a chunk every N steps keeps a 2-core CI machine able to
    # serve 32 streams without the server's own step slipping.
    parser.add_argument("--stream-interval", type=int, default=1)
    parser.add_argument("--max-running-requests", type=int, default=None)
    # SGLang 0.5.23's spelling (the one specbench sends when it knows no other release).
    parser.add_argument("--cuda-graph-max-bs-decode", type=int, default=None)
    parser.add_argument("--draft-model-path", default="fixed-step-draft")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
