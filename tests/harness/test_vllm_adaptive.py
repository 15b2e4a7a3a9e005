"""vLLM's per-batch-size chain length on the real CPU engine (marker vllm).

A server is launched with the table specbench writes ([[1, 1, 3], [2, 4, 0]]: k = 3
alone, no speculation from batch 2) and a draft identical to the target (every draft
accepted: tau = k + 1 exactly); a ramp of one request, then four at once, then one
again reads the engine's own /metrics counters after each phase: drafts are counted
while one request runs, and while four run only in a step one of them runs alone.

Needs SPECBENCH_VLLM_PYTHON and SPECBENCH_TINY_MODELS (see tests/sweeps/test_vllm_engine.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from specbench.harness.adaptive_config import VLLM_ADAPTIVE, VLLM_TABLE_KEY
from specbench.harness.vllm import fetch_spec_counters

VLLM_PYTHON = os.environ.get("SPECBENCH_VLLM_PYTHON")
TINY = os.environ.get("SPECBENCH_TINY_MODELS")
REQUIRED = os.environ.get("SPECBENCH_REQUIRE_VLLM") == "1"
AVAILABLE = bool(VLLM_PYTHON and TINY and Path(VLLM_PYTHON).exists() and Path(TINY).is_dir())

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not AVAILABLE and not REQUIRED,
        reason="SPECBENCH_VLLM_PYTHON / SPECBENCH_TINY_MODELS not set (see .ci/vllm.sh)",
    ),
]

TABLE = [[1, 1, 3], [2, 4, 0]]
TOKENS = 24
READY_TIMEOUT_S = 900


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1.0)
    pytest.fail(f"vLLM not ready after {READY_TIMEOUT_S} s: {log.read_text()[-3000:]}")


def _complete(url: str, model: str, prompt: str) -> dict[str, Any]:
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": TOKENS,
                       "temperature": 0, "ignore_eos": True}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"{url}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def _phase(url: str, model: str, concurrency: int) -> dict[str, Any]:
    """``concurrency`` requests at once; the drafts /metrics counted meanwhile."""
    before = fetch_spec_counters(url)
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(lambda i: _complete(url, model, f"count with me {i}: one two"),
                                range(concurrency)))  # fmt: skip
    elapsed = time.monotonic() - started
    after = fetch_spec_counters(url)
    assert after is not None
    drafts = after.drafts - (before.drafts if before else 0.0)
    accepted = after.accepted - (before.accepted if before else 0.0)
    tokens = sum(a["usage"]["completion_tokens"] for a in answers)
    return {
        "concurrency": concurrency,
        "drafts": drafts,
        "tau": 1.0 + accepted / drafts if drafts else None,
        "output_tokens_per_s": tokens / elapsed,
    }


def test_the_table_speculates_alone_and_not_in_a_batch(tmp_path: Path) -> None:
    assert VLLM_PYTHON and TINY
    target = str(Path(TINY) / "target")
    spec = {
        "method": "draft_model",
        "model": target,
        "num_speculative_tokens": 3,
        VLLM_TABLE_KEY: TABLE,
    }
    assert VLLM_ADAPTIVE.problem(spec) is None
    port = _port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "vllm.log"
    cmd = [VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", target,
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "512", "--enforce-eager", "--max-num-seqs", "4",
           "--speculative-config", json.dumps(spec)]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_ready(url, proc, log)
        _complete(url, target, "warm up")  # the first request compiles
        phases = [_phase(url, target, c) for c in (1, 4, 1)]
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=120)
    (tmp_path / "phases.json").write_text(json.dumps(phases, indent=2))
    print(json.dumps(phases))
    alone, batch, again = phases
    assert alone["drafts"] > 0 and again["drafts"] > 0
    assert alone["tau"] == pytest.approx(4.0, abs=0.05)  # identical draft: k + 1
    # Four requests of 24 tokens at k = 3 would draft 4 x 6 = 24 times without the
    # table; with it only a step that runs one request alone drafts (the first
    # request's decode step before the other three have arrived: 1 here).
    assert batch["drafts"] <= 2
