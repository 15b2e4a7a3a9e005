"""serve-sim bounds its inputs, always stops on SIGTERM, and its --time-scale is recorded
and kept out of what is measured."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from specbench.harness.net import free_port
from specbench.serve_sim.scheduler import MAX_NEW_TOKENS


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "specbench", "serve-sim", "--target", "minimax-m2.7",
         "--port", str(port), "--time-scale", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/health_generate", timeout=2) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _generate(max_new_tokens: object) -> bytes:
    return json.dumps({"text": "hi", "sampling_params": {"max_new_tokens": max_new_tokens},
                       "stream": True}).encode()  # fmt: skip


def test_a_huge_max_new_tokens_is_refused_without_growing(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url = server
    before = _rss_kib(proc.pid)
    status, body = _post(url + "/generate", _generate(10**9))
    assert status == 400 and str(MAX_NEW_TOKENS).encode() in body
    # A request answered after it: whatever the refused one set off has run by then.
    assert _post(url + "/generate", _generate(4), timeout=60)[0] == 200
    assert _rss_kib(proc.pid) - before < 50_000  # KiB: nothing was allocated for it


def test_a_deeply_nested_body_is_a_400_not_a_500(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    _, url = server
    status, body = _post(url + "/generate", b"[" * 100_000)
    assert status == 400 and b"nested too deeply" in body


def test_sigterm_stops_it_during_a_long_stream_and_a_huge_request(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    """A stream in flight and a request for 10**9 tokens (which used to block the event
    loop, SIGTERM handling included, while it allocated): SIGTERM still stops it."""
    proc, url = server
    port = int(url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as streaming,
        socket.create_connection(("127.0.0.1", port)) as huge,
    ):
        for conn, tokens in ((streaming, MAX_NEW_TOKENS), (huge, 10**9)):
            body = _generate(tokens)
            conn.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        assert streaming.recv(64).startswith(b"HTTP/1.1 200")  # streaming has started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # generous for a loaded CI machine; it used to hang


def _sweep(tmp_path: Path, scale: float) -> dict[str, object]:
    launch = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
        f"--hardware h200-nvlink --time-scale {scale} --sglang-args {{args}}"
    )
    out = tmp_path / f"scale-{scale}"
    result = subprocess.run(
        [sys.executable, "-m", "specbench", "sweep", "--backend", "sglang", "--launch-cmd", launch,
         "--strategy", "fixed", "--config", "3,4,8", "--concurrency", "1", "--num-prompts", "3",
         "--max-new-tokens", "48", "--hardware", "h200-nvlink", "--no-report", "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "SPECBENCH_DEBUG": "0"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["sim_time_scale"] == scale
    assert results["sim_time_scale"] == scale
    rows = [r for r in results["trials"] if r["config_key"] == "3-4-8"]
    return dict(rows[0])


def test_time_scale_is_recorded_and_does_not_change_the_speedup(tmp_path: Path) -> None:
    fast = _sweep(tmp_path, 0.005)
    slow = _sweep(tmp_path, 0.1)

    # Accept lengths are random per request (rids are unique), so tau differs a little
    # between two runs; speed per accepted token is what the clock decides.
    def per_tau(row: dict[str, object]) -> float:
        return float(row["speedup"]) / float(row["tau"])  # type: ignore[arg-type]

    assert per_tau(fast) == pytest.approx(per_tau(slow), rel=0.02)
