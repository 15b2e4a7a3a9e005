"""End to end: the sglang backend launches serve-sim through launch_cmd, loads it, measures.

Also attach mode, serve-sim's HTTP surface, and its CLI behaviour.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from specbench.errors import BadInputError
from specbench.harness.metrics import summarize
from specbench.harness.net import free_port
from specbench.harness.server_backend import ServerBackend
from specbench.model import PerformanceModel, load_hardware
from specbench.serve_sim.scheduler import READY_LINE, SIM_HEADER
from specbench.spec_config import SpecConfig
from tests.support.servers import (
    HARDWARE,
    TARGET,
    assert_group_gone,
    in_thread_serve_sim,
    read_pid,
    serve_sim_launch_cmd,
    small_load,
)

CONFIG = SpecConfig(3, 4, 8)


def test_launch_serve_sim_measures_the_model_tau(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "server.pid"
    backend = ServerBackend(
        target,
        launch_cmd=serve_sim_launch_cmd(pidfile, time_scale=0.02),
        ready_timeout_s=60,
        grace_s=5,
    )
    log = tmp_path / "logs" / "3-4-8.log"
    progress: list[tuple[int, int]] = []
    load = small_load(n=18, concurrency=6, max_new_tokens=64)
    with backend.session(CONFIG, log_path=log) as session:
        pgid = read_pid(pidfile)
        info = session.server_info()
        assert info["specbench_simulated"] is True
        assert (
            info["speculative_num_steps"],
            info["speculative_eagle_topk"],
            info["speculative_num_draft_tokens"],
        ) == (3, 4, 8)
        assert info["model_path"] == target.model_path
        records = session.run(load, lambda done, total: progress.append((done, total)))
        session.flush_cache()
    assert_group_gone(pgid)
    assert READY_LINE in log.read_text()
    assert backend.simulated is True and backend.describe()["simulated"] is True

    assert len(records) == 18 and progress[-1] == (18, 18)
    for r in records:
        assert r.ok, r.error
        assert r.completion_tokens == 64 and r.prompt_tokens > 0
        assert r.spec_verify_ct is not None and 0 < r.spec_verify_ct < 64
        assert r.spec_accept_length == pytest.approx(64 / r.spec_verify_ct)
        assert r.concurrency == 6 and r.simulated and r.config_key == "3-4-8"
        assert len(r.itl_ms) == 63  # one entry per token after the first
        assert r.ttft_ms is not None and r.e2e_ms is not None and r.e2e_ms >= r.ttft_ms
    metrics = summarize(records)
    expected = PerformanceModel(target, load_hardware(HARDWARE)).expected_tau(CONFIG)
    # 18 x 64 tokens ~ 430 verify steps: the sampling error of the mean is ~3 %.
    assert metrics.tau == pytest.approx(expected, rel=0.12), (metrics.tau, expected)


def test_baseline_and_speculation_give_a_speedup(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    """Both sessions through one backend; serve-sim's pacing carries the model's speedup."""
    pidfile = tmp_path / "server.pid"
    backend = ServerBackend(
        target,
        launch_cmd=serve_sim_launch_cmd(pidfile, time_scale=0.25),
        ready_timeout_s=60,
        grace_s=5,
    )
    load = small_load(n=4, concurrency=1, max_new_tokens=48, warmup_requests=0)
    measured = {}
    for config in (None, CONFIG):
        with backend.session(config, log_path=tmp_path / f"{config}.log") as session:
            pgid = read_pid(pidfile)
            measured[config] = session.run(load)
        assert_group_gone(pgid)
        pidfile.unlink()
    base = summarize(measured[None])
    assert all(r.spec_verify_ct is None for r in measured[None])
    assert math.isnan(base.tau)
    spec = summarize(measured[CONFIG], baseline=base)
    predicted = PerformanceModel(target, load_hardware(HARDWARE)).predict(CONFIG, 1).speedup
    # Wall-clock pacing on a shared CI core: generous bounds, but the direction must hold.
    assert spec.speedup > 1.0 + 0.4 * (predicted - 1.0), (spec.speedup, predicted)
    assert spec.speedup < predicted * 1.3, (spec.speedup, predicted)


def test_attach_measures_only_the_servers_own_configuration(target) -> None:  # type: ignore[no-untyped-def]
    with in_thread_serve_sim(num_steps=3, topk=4, num_draft_tokens=8, time_scale=0.01) as endpoint:
        backend = ServerBackend(target, endpoint=endpoint)
        with backend.session(CONFIG, log_path=Path("unused.log")) as session:
            records = session.run(small_load(n=3, concurrency=3, max_new_tokens=8))
            assert session.endpoint == endpoint
        assert all(r.ok and r.spec_verify_ct for r in records)
        assert backend.simulated and backend.describe()["mode"] == "attach"
        with (
            pytest.raises(
                BadInputError, match=r"runs \(3,4,8\); cannot measure \(5,4,8\) without restarting"
            ),
            backend.session(SpecConfig(5, 4, 8), log_path=Path("unused.log")),
        ):
            pass
        with (
            pytest.raises(
                BadInputError, match="baseline needs a server started without speculation"
            ),
            backend.session(None, log_path=Path("unused.log")),
        ):
            pass
    assert not Path("unused.log").exists()


def _get(
    url: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        url, method=method, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_serve_sim_http_surface() -> None:
    with in_thread_serve_sim(num_steps=3, topk=4, num_draft_tokens=8, time_scale=0.2) as ep:
        status, headers, body = _get(
            ep + "/generate",
            "POST",
            json.dumps(
                {"text": "Write a python function", "sampling_params": {"max_new_tokens": 6}}
            ).encode(),
        )
        assert status == 200 and headers[SIM_HEADER] == "true"
        out = json.loads(body)
        assert len(out["text"].split()) == 6
        meta = out["meta_info"]
        assert meta["completion_tokens"] == 6 and meta["specbench_simulated"] is True
        assert meta["finish_reason"] == {"type": "length", "length": 6}
        assert meta["spec_verify_ct"] >= 2 and meta["e2e_latency"] > 0

        for path in ("/server_info", "/get_server_info"):
            status, headers, body = _get(ep + path)
            info = json.loads(body)
            assert status == 200 and info["specbench_simulated"] is True
            assert "avg_spec_accept_length" in info["internal_states"][0]
        assert _get(ep + "/health")[0] == 200 and _get(ep + "/health_generate")[0] == 200

        async def flush_while_busy() -> tuple[int, int]:
            """400 while a request runs; a client that disconnects aborts its request."""
            async with aiohttp.ClientSession() as http:
                payload = {
                    "text": "hi",
                    "sampling_params": {"max_new_tokens": 5000},
                    "stream": True,
                }
                resp = await http.post(ep + "/generate", json=payload)
                await resp.content.readline()  # the first chunk: the request is running
                async with http.post(ep + "/flush_cache") as busy:
                    busy_status = busy.status
                resp.close()  # disconnect mid-stream
                for _ in range(200):
                    async with http.post(ep + "/flush_cache") as idle:
                        if idle.status == 200:
                            return busy_status, idle.status
                    await asyncio.sleep(0.01)
                return busy_status, 400

        assert asyncio.run(flush_while_busy()) == (400, 200)
        status, headers, body = _get(ep + "/metrics")
        text = body.decode()
        assert "SIMULATED" in text and headers[SIM_HEADER] == "true"
        for name in (
            "sglang:spec_accept_length",
            "sglang:num_running_reqs",
            "sglang:gen_throughput",
        ):
            assert f"\n{name}{{" in text
        status, _, body = _get(ep + "/generate", "POST", b"not json")
        assert status == 400 and b"not JSON" in body


def test_serve_sim_is_not_ready_during_startup_delay() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "specbench",
            "serve-sim",
            "--target",
            TARGET,
            "--port",
            str(port),
            "--startup-delay",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert "SIMULATED" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status = _get(f"http://127.0.0.1:{port}/health_generate")[0]
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        assert status == 503
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "shutting down" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert_group_gone(proc.pid)


@pytest.mark.parametrize(
    "port_args",
    [
        ["--port", "{port}"],
        # the same through the SGLang argument path, unknown SGLang flags ignored
        ["--sglang-args", "--port", "{port}", "--mem-fraction-static", "0.8"],
    ],
)
def test_cli_port_in_use_is_one_line_and_exit_2(port_args: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        args = [a.format(port=port) for a in port_args]
        result = subprocess.run(
            [sys.executable, "-m", "specbench", "serve-sim", "--target", TARGET, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == f"specbench: error: port {port} is already in use on 127.0.0.1\n"
