"""The measurement window against servers whose decode step takes a FIXED time.

Such a server's speedup is a property of the server alone (tokens per step over step
time), so a correct window gives the same speedup at every concurrency. Before the
window measured only the engine, c=32 came out 20-36% low: a warm-up on two
connections left 30 connections to open inside the timed window, through a small
accept queue.
"""

from __future__ import annotations

import contextlib
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from specbench.harness.backend import LoadSpec
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.metrics import summarize, window_samples
from specbench.harness.prompts import builtin_prompts
from specbench.harness.window import stall_reasons
from specbench.rundir.records import RequestRecord

SERVER = Path(__file__).parents[1] / "support" / "fixed_step_server.py"
#: A listen backlog far below the concurrency: new connections queue in the kernel.
SMALL_BACKLOG = 4
#: Long enough that a client slowed by a busy CI machine still sends its next request
#: before the server's next step (a missed step is the client's delay, not the engine's).
STEP_MS = 20.0
#: Measurements of a load at most (the first and re-measurements of flagged ones).
REPEATS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fixed_step_server(tokens_per_step: int, step_ms: float, backlog: int) -> Iterator[str]:
    port = _free_port()
    argv = [sys.executable, str(SERVER), "--port", str(port), "--step-ms", str(step_ms)]
    argv += ["--tokens-per-step", str(tokens_per_step), "--backlog", str(backlog)]
    argv += ["--stream-interval", "4"]
    proc = subprocess.Popen(argv)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30.0
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("the fixed-step server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _measure(url: str, load: LoadSpec) -> list[RequestRecord]:
    """A load, measured again while it is flagged (as the sweep does with --repeats):
    a 2-core CI machine shared with other jobs can stall a server process for a second."""
    for _ in range(REPEATS):
        records = run_closed_loop(url, load)
        if not stall_reasons(window_samples(records)):
            break
    return records


def test_speedup_is_the_same_at_every_concurrency_with_a_small_accept_queue() -> None:
    prompts = builtin_prompts()[:4]
    speedups: dict[int, float] = {}
    with (
        fixed_step_server(1, STEP_MS, SMALL_BACKLOG) as base_url,
        fixed_step_server(3, 1.5 * STEP_MS, SMALL_BACKLOG) as spec_url,
    ):
        for concurrency in (1, 8, 32):
            load = LoadSpec(
                concurrency=concurrency,
                prompts=prompts,
                max_new_tokens=96,
                num_requests=max(4, 2 * concurrency),
            )
            base = _measure(base_url, load)
            spec = _measure(spec_url, load)
            base_metrics = summarize(base)
            metrics = summarize(spec, base_metrics, baseline_samples=window_samples(base))
            assert metrics.num_errors == 0
            assert metrics.speedup_ci_low <= metrics.speedup <= metrics.speedup_ci_high
            speedups[concurrency] = metrics.speedup
    assert all(math.isfinite(v) for v in speedups.values())
    assert max(speedups.values()) <= 1.05 * min(speedups.values()), speedups
