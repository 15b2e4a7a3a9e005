"""The sweep against real HTTP servers: serve-sim launched per configuration, or attached.

serve-sim speaks SGLang's native API with SIMULATED latencies, so this exercises the
launch/attach paths of the sweep (not SGLang itself) without a GPU.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from specbench.rundir.layout import RunDirectory
from tests.support.sweeps import run_cli

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "data" / "model_configs"
SMALL = ["--num-prompts", "3", "--max-new-tokens", "16", "--concurrency", "1,2", "--no-report"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_sim(*args: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "specbench", "serve-sim", "--target", "minimax-m2.7",
         "--port", str(port), "--time-scale", "0.02", *args],
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


def test_launch_mode_measures_baseline_and_config_then_stops_servers(tmp_path: Path) -> None:
    launch = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
        "--hardware h200-nvlink --time-scale 0.02 --sglang-args {args}"
    )
    out = tmp_path / "launched"
    result = run_cli(
        ["sweep", "--backend", "sglang", "--launch-cmd", launch, "--strategy", "fixed",
         "--config", "3,4,8", "--hardware", "h200-nvlink", "--ready-timeout", "60",
         "--out", str(out), *SMALL],
        cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = RunDirectory(out)
    manifest = run.read_manifest()
    assert manifest.backend == "sglang"
    assert manifest.simulated is True  # learnt from serve-sim's server info
    frame = run.read_trials()
    spec = frame[frame["config_key"] == "3-4-8"]
    assert len(spec) == 2 and (spec["state"] == "complete").all()
    assert (spec["speedup"] > 1.0).all()
    assert spec["tau"].between(1.5, 4.0).all()
    assert (run.logs_dir / "baseline.log").stat().st_size > 0
    assert list(run.logs_dir.glob("trial-*-3-4-8.log"))
    assert all(r.simulated for r in run.iter_requests())
    # The printed lines are the servers measured: sized for the highest concurrency.
    results = run.read_results()
    for line in (results["verdict"]["launch"], results["best"]["launch_command"]):
        assert "--max-running-requests 2 --cuda-graph-max-bs-decode 2" in line


def test_attach_mode_measures_only_the_servers_config(tmp_path: Path) -> None:
    out = tmp_path / "attached"
    with serve_sim("--num-steps", "5", "--topk", "4", "--num-draft-tokens", "8") as spec_url, \
            serve_sim("--no-speculation") as base_url:  # fmt: skip
        result = run_cli(
            ["sweep", "--endpoint", spec_url, "--baseline-endpoint", base_url,
             "--out", str(out), *SMALL],
            cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    banner = " ".join(result.stderr.split())
    assert f"on the server at {spec_url} (version specbench-serve-sim" in banner
    assert "which runs 5-4-8 (num_steps 5, topk 4, num_draft_tokens 8)" in banner
    assert f"baseline server: {base_url}" in banner
    assert "valid configurations" not in banner
    run = RunDirectory(out)
    frame = run.read_trials()
    assert set(frame["config_key"]) == {"baseline", "5-4-8"}
    spec = frame[frame["config_key"] == "5-4-8"]
    assert set(spec["source"]) == {"endpoint"}
    assert spec["speedup"].notna().all()
    assert run.read_manifest().simulated is True
    assert run.read_manifest().hardware["source"] == "endpoint"


def test_attach_mode_prints_the_attached_servers_own_configuration(tmp_path: Path) -> None:
    """The launch lines of an attached run name the server's model path, TP and batch
    limits as its server info reports them, not the preset's (tp 4, hub paths, none);
    the model path is a local folder, so the target's architecture is read from the
    config.json there (a recorded Qwen3-30B-A3B one), and the run says so."""
    out = tmp_path / "attached"
    model = MODEL_CONFIGS / "Qwen3-30B-A3B"
    served = (
        f"--model-path {model} --tp-size 8 --max-running-requests 6 --cuda-graph-max-bs-decode 6"
    )
    speculative = (
        "--speculative-algorithm EAGLE3 --speculative-draft-model-path /srv/eagle3 "
        "--speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4"
    )
    with serve_sim("--sglang-args", *served.split(), *speculative.split()) as url, \
            serve_sim("--sglang-args", *served.split()) as base_url:  # fmt: skip
        result = run_cli(
            ["sweep", "--endpoint", url, "--baseline-endpoint", base_url, "--out", str(out), *SMALL],
            cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = RunDirectory(out)
    results = run.read_results()
    lines = [r["launch"] for r in results["recommendations"]] + [results["verdict"]["launch"]]
    assert any("--speculative-draft-model-path /srv/eagle3" in line for line in lines)
    for line in lines:
        words = shlex.split(line)
        assert words[words.index("--model-path") + 1] == str(model)
        assert words[words.index("--tp-size") + 1] == "8"
        assert "--max-running-requests 6 --cuda-graph-max-bs-decode 6" in line
    config = str(model / "config.json")
    assert run.read_manifest().extra["target_config"] == config
    said = " ".join(result.stderr.split())
    assert f"target architecture from the served model's {config}: Qwen3MoeForCausalLM" in said
    assert "48 layers, hidden 2048, 128 experts" in said


def test_attach_without_baseline_reports_tau_only(tmp_path: Path) -> None:
    out = tmp_path / "attached"
    with serve_sim("--num-steps", "3", "--topk", "4", "--num-draft-tokens", "8") as url:
        result = run_cli(["sweep", "--endpoint", url, "--out", str(out), *SMALL], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frame = RunDirectory(out).read_trials()
    assert list(frame["config_key"].unique()) == ["3-4-8"]
    assert frame["tau"].notna().all() and frame["speedup"].isna().all()
    assert "baseline server: none, so speedups are unknown" in " ".join(result.stderr.split())
    assert "-x" not in result.stdout  # an unknown speedup is "-", not a number
    assert "1 configuration measured" in result.stdout
