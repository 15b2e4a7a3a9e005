"""The open-loop client against serve-sim: requests sent on schedule, timed on the
server's virtual clock, and the same latencies as the in-process simulator at that load."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from specbench.harness.loads import ConstantArrival, RateLoad, RateRun
from specbench.harness.open_loop_client import run_open_loop
from specbench.harness.prompts import builtin_prompts
from specbench.harness.rate_metrics import summarize_rate
from specbench.harness.sim_engine import SimEngine
from specbench.harness.sim_open_loop import run_open_loop_sim
from specbench.model import PerformanceModel, load_hardware, load_target

#: Slow enough that a loaded 2-core machine keeps serve-sim's clock (0.05 does not).
TIME_SCALE = 0.3


@contextlib.contextmanager
def serve_sim(*args: str) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "specbench", "serve-sim", "--target", "minimax-m2.7",
         "--port", str(port), "--time-scale", str(TIME_SCALE), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health_generate", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "serve-sim exited"
            assert time.monotonic() < deadline, "serve-sim never became ready"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_sim_at_a_rate_gives_the_in_process_latencies() -> None:
    prompts = builtin_prompts()[:6]
    load = RateLoad(4.0, ConstantArrival())
    run = RateRun(load, [prompts[i % 6] for i in range(24)], 32, 600.0)
    with serve_sim("--no-speculation") as url:
        served = summarize_rate(run_open_loop(url, run, sim_time_scale=TIME_SCALE), load)
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
    alone = run_open_loop_sim(
        SimEngine(model, None), run.prompts, load, max_new_tokens=32, timeout_s=600.0, id_prefix="t"
    )
    expected = summarize_rate(alone, load)
    assert served.completed == 24 and served.failed == 0
    assert served.sent_rate_per_s >= 0.95 * load.rate_per_s, served.flags
    assert served.tpot_ms_p50 == pytest.approx(expected.tpot_ms_p50, rel=0.15)
    assert served.ttft_ms_p50 == pytest.approx(expected.ttft_ms_p50, rel=0.25)
    assert served.achieved_rate_per_s == pytest.approx(expected.achieved_rate_per_s, rel=0.10)


def test_max_concurrency_holds_requests_in_the_client() -> None:
    prompts = builtin_prompts()[:4]
    load = RateLoad(50.0, ConstantArrival(), max_concurrency=2)
    run = RateRun(load, [prompts[i % 4] for i in range(8)], 16, 600.0)
    with serve_sim("--no-speculation") as url:
        result = run_open_loop(url, run, sim_time_scale=TIME_SCALE)
    assert all(r.ok for r in result.records)
    # Due 20 ms apart, but at most two in flight: the later ones wait for a slot.
    waits = [sent - due for sent, due in zip(result.sent_s, result.due_s, strict=True)]
    assert waits[-1] > 5 * (result.due_s[1] - result.due_s[0])
