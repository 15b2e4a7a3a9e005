"""How close the open-loop client sends to its schedule (target: p99 lateness < 1 ms at
200 req/s on one core), beside a bare asyncio timer on the same schedule.

Run on demand: ``python benchmarks/send_accuracy.py [RATE] [SECONDS]``. A helper process
(pinned to another core where there is one) serves SGLang-shaped SSE streams of
``CHUNKS`` tokens, one chunk every ``CHUNK_GAP_S`` (a decoding server), so at 200 req/s
about 30 streams are in flight and the client parses thousands of chunks a second while
it keeps time. The client process is pinned to one core. Printed, per timer:

* bare: an asyncio loop that only ``asyncio.sleep``s to each due time (what a plain
  asyncio timer gives: it wakes up to a millisecond late, epoll's timeout resolution);
* client: ``specbench.harness.open_loop_client`` sending real requests on a seeded
  Poisson schedule, its timer's lateness (fired - due) as its OpenLoopRun records it,
  and the sent rate against the offered one;

then their p50/p99 lateness in ms and the client's p99 as a ratio of the bare timer's.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from aiohttp import web

CHUNKS = 16
CHUNK_GAP_S = 0.01
TARGET_P99_MS = 1.0


def _serve(port: int) -> None:
    frames = []
    for n in range(1, CHUNKS + 1):
        meta = {
            "id": "bench",
            "finish_reason": None if n < CHUNKS else {"type": "length", "length": CHUNKS},
            "prompt_tokens": 32,
            "completion_tokens": n,
            "cached_tokens": 0,
        }
        frames.append(b"data: " + json.dumps({"text": "w " * n, "meta_info": meta}).encode())
    frames = [f + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]

    async def generate(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for frame in frames:
            await asyncio.sleep(CHUNK_GAP_S)
            await resp.write(frame)
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/generate", generate)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {core})


async def _bare(due: list[float]) -> list[float]:
    start = time.perf_counter()
    late = []
    for at in due:
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append((time.perf_counter() - start - at) * 1000.0)
    return late


def _pcts(values: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


def main() -> None:
    from specbench.harness.loads import PoissonArrival, RateLoad, RateRun
    from specbench.harness.open_loop_client import run_open_loop
    from specbench.harness.prompts import builtin_prompts
    from specbench.harness.rate_metrics import summarize_rate

    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 200.0
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    code += f"import os, send_accuracy as s; s._pin({cores[-1]}); s._serve({port})"
    server = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        _pin(cores[0])
        load = RateLoad(rate, PoissonArrival(), seed=0)
        count = int(rate * seconds)
        prompts = builtin_prompts()[:8]
        run = RateRun(load, [prompts[i % 8] for i in range(count)], CHUNKS, 60.0)
        bare50, bare99 = _pcts(asyncio.run(_bare(run.due_s)))
        result = run_open_loop(url, run)
        summary = summarize_rate(result, load)
        lag = [(f - d) * 1000.0 for f, d in zip(result.fired_s, result.due_s, strict=True)]
        client50, client99 = _pcts(lag)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{count} requests at {rate:g} req/s (Poisson, seed 0), client on core {cores[0]}")
    print(f"bare asyncio timer  lateness p50 {bare50:.3f} ms  p99 {bare99:.3f} ms")
    print(f"open-loop client    lateness p50 {client50:.3f} ms  p99 {client99:.3f} ms")
    print(
        f"client / bare p99   {client99 / bare99 if bare99 > 0 else float('nan'):.2f}x; "
        f"sent {summary.sent_rate_per_s:.4g} of {rate:g} req/s; "
        f"{summary.completed} of {count} completed; "
        f"target p99 < {TARGET_P99_MS:g} ms: {'met' if client99 < TARGET_P99_MS else 'NOT met'}"
    )
    if summary.flags:
        print("flags: " + "; ".join(summary.flags))


if __name__ == "__main__":
    main()
