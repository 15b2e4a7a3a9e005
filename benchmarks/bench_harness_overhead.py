"""Client-side cost of the load generator per streamed chunk (target: < 1 % of a 10 ms ITL).

Run on demand: ``python benchmarks/bench_harness_overhead.py``. A helper process serves
SGLang-shaped SSE streams (``data: {"text": <cumulative>, "meta_info": {...}}`` per token,
then ``data: [DONE]``) with no delay, so the client is the only thing being timed. In the
same run the client process reads the same streams twice:

* reference: a bare aiohttp loop that reads every line and does nothing else;
* loadgen: ``specbench.harness.loadgen.run_closed_loop_async`` (JSON parse, timing, ITL
  bookkeeping, records).

It prints the client CPU time per chunk of each, their ratio, and the extra cost of
loadgen per chunk as a percentage of a 10 ms inter-token latency: the share of a real
measurement that the harness itself could distort. CPU time (``process_time``) of the
client process is used because wall time here is mostly the server's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

ITL_REFERENCE_MS = 10.0
TARGET_PERCENT = 1.0
CHUNKS = 256
REQUESTS = 40
REPEATS = 3


# -- the stream server (runs in a child process) ----------------------------------------------
def _serve(port: int, chunks: int) -> None:
    words = [f"w{i}" for i in range(chunks)]
    frames: list[bytes] = []
    for n in range(1, chunks + 1):
        meta = {
            "id": "bench",
            "finish_reason": None if n < chunks else {"type": "length", "length": chunks},
            "prompt_tokens": 32,
            "completion_tokens": n,
            "cached_tokens": 0,
            "spec_verify_ct": (n + 2) // 3,
        }
        frames.append(
            b"data: "
            + json.dumps({"text": " ".join(words[:n]), "meta_info": meta}).encode()
            + b"\n\n"
        )
    frames.append(b"data: [DONE]\n\n")

    async def generate(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for frame in frames:
            await resp.write(frame)  # one write per chunk, as SGLang does
        await resp.write_eof()
        return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/generate", generate)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- the two clients ------------------------------------------------------------------------------
async def _raw_client(endpoint: str, requests: int, concurrency: int) -> int:
    lines = 0
    payload = {"text": "x", "sampling_params": {"max_new_tokens": CHUNKS}, "stream": True}
    async with aiohttp.ClientSession() as http:
        queue = iter(range(requests))

        async def worker() -> None:
            nonlocal lines
            for _ in queue:
                async with http.post(endpoint + "/generate", json=payload) as resp:
                    async for line in resp.content:
                        if line.startswith(b"data:"):
                            lines += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lines


def _loadgen_client(endpoint: str, requests: int, concurrency: int) -> int:
    from specbench.harness.backend import LoadSpec
    from specbench.harness.loadgen import run_closed_loop_async
    from specbench.harness.prompts import builtin_prompts

    load = LoadSpec(
        concurrency=concurrency,
        prompts=builtin_prompts()[:8],
        max_new_tokens=CHUNKS,
        warmup_requests=0,
        num_requests=requests,
    )
    records = asyncio.run(run_closed_loop_async(endpoint, load))
    bad = [r.error for r in records if not r.ok]
    if bad:
        raise SystemExit(f"loadgen failed: {bad[0]}")
    return sum(r.completion_tokens for r in records)


def _raw(endpoint: str, requests: int, concurrency: int) -> int:
    return asyncio.run(_raw_client(endpoint, requests, concurrency))


def _cpu(fn: object, *args: object) -> tuple[float, int]:
    start = time.process_time()
    count = fn(*args)  # type: ignore[operator]
    return time.process_time() - start, int(count)


def main() -> None:
    from specbench.harness.net import free_port

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                import urllib.request

                urllib.request.urlopen(endpoint + "/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("stream server did not start") from None
                time.sleep(0.05)
        print(
            f"client CPU per streamed chunk, {REQUESTS} requests x {CHUNKS} chunks, "
            f"best of {REPEATS} (server in another process)"
        )
        print(
            f"{'conc':>4} {'raw us/chunk':>13} {'loadgen us/chunk':>17} {'ratio':>6} "
            f"{'extra us/chunk':>15} {'% of 10ms ITL':>14}"
        )
        worst = 0.0
        for concurrency in (1, 8):
            raw = min(_cpu(_raw, endpoint, REQUESTS, concurrency)[0] for _ in range(REPEATS))
            gen = min(
                _cpu(_loadgen_client, endpoint, REQUESTS, concurrency)[0] for _ in range(REPEATS)
            )
            chunks = REQUESTS * CHUNKS
            raw_us = raw / chunks * 1e6
            gen_us = gen / chunks * 1e6
            extra_us = gen_us - raw_us
            percent = gen_us / (ITL_REFERENCE_MS * 1000.0) * 100.0
            worst = max(worst, percent)
            print(
                f"{concurrency:>4} {raw_us:>13.1f} {gen_us:>17.1f} {gen_us / raw_us:>6.2f} "
                f"{extra_us:>15.1f} {percent:>13.2f}%"
            )
        verdict = "OK" if worst < TARGET_PERCENT else "OVER TARGET"
        print(
            f"loadgen's whole client cost per chunk is at most {worst:.2f}% of a "
            f"{ITL_REFERENCE_MS:g} ms ITL (target < {TARGET_PERCENT:g}%): {verdict}"
        )
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        _serve(int(sys.argv[2]), CHUNKS)
    else:
        main()
