"""``predict`` answers in the sweep's shape (issue 22 items 3 and 9): the engine's limits
before ranking, the model's intervals, one pick per load with its ties named, the launch
line and the memory check on the console, and sweep's default loads."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.support.sweeps import run_cli


def test_vllm_is_never_recommended_a_tree(tmp_path: Path) -> None:
    args = ["predict", "--engine", "vllm", "--target", "llama-3.1-8b", "--hardware", "h100-nvlink"]
    result = run_cli([*args, "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {row["topk"] for row in data["rows"]} == {1}  # vLLM drafts chains only
    assert data["verdict"]["config"]["topk"] == 1
    assert all(r["config"] is None or r["config"]["topk"] == 1 for r in data["recommendations"])
    assert "vllm serve" in data["verdict"]["launch"]


def test_predict_prints_the_decision_with_intervals_launch_line_and_memory(tmp_path: Path) -> None:
    result = run_cli(
        ["predict", "--target", "minimax-m2.7", "--hardware", "h200-nvlink"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "concurrency 128" not in out  # sweep's loads: 1, 8, 32
    assert "at concurrency 32:" in out
    assert "the model's +-10%" in out and "x [" in out
    assert "python -m sglang.launch_server" in out
    assert "memory: Fits" in out
    # No raw "best per concurrency" table: ties within the model's error are named as such.
    assert "best configuration per concurrency" not in out
    assert "within noise" in out


def test_predict_that_does_not_fit_names_a_runnable_tp(tmp_path: Path) -> None:
    args = [
        "predict",
        "--target",
        "minimax-m2.7",
        "--hardware",
        "l40s-pcie-host-staged",
        "--tp",
        "4",
    ]
    result = run_cli([*args, "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"]["kind"] == "does-not-fit" and data["recommendations"] == []
    advice = data["verdict"]["launch"]
    assert advice.endswith("--tp 8")
    again = run_cli([*shlex.split(advice)[1:], "--json"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["verdict"]["kind"] != "does-not-fit"
