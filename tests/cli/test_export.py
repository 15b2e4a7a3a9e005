"""`specbench export RUN_DIR --engine sglang|vllm` and `--check FILE`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from specbench.harness.adaptive_config import SGLANG_ADAPTIVE, VLLM_ADAPTIVE, VLLM_TABLE_KEY
from specbench.harness.engine import Deployment
from specbench.harness.served_deployment import SERVED_KEY, deployment_record
from specbench.spec_config import SpecConfig
from tests.support.run_dirs import write_run
from tests.support.sweeps import run_cli

CONFIGS = [SpecConfig(3, 4, 8), SpecConfig(3, 1, 4), SpecConfig(2, 1, 3), SpecConfig(1, 1, 2)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run") / "run", configs=CONFIGS, failed=0)


def test_sglang_export_writes_a_file_sglang_accepts_and_the_launch_line(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "adaptive.json"
    done = run_cli(["export", str(run_dir), "--engine", "sglang", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    body = json.loads(out.read_text())
    assert SGLANG_ADAPTIVE.problem(body) is None
    assert set(body) == {"1", "8", "32"}
    assert done.stdout.startswith("SIMULATED: sglang adaptive speculation")
    assert f"--speculative-adaptive-config {out}" in done.stdout
    assert "--speculative-eagle-topk 1" in done.stdout


def test_vllm_export_defaults_into_the_run_directory_as_json(run_dir: Path, tmp_path: Path) -> None:
    done = run_cli(["export", str(run_dir), "--engine", "vllm", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    path = run_dir / "adaptive-vllm.json"
    assert summary["path"] == str(path)
    body = json.loads(path.read_text())
    assert body == summary["config"]
    assert VLLM_ADAPTIVE.problem(body) is None
    assert body[VLLM_TABLE_KEY][0][0] == 1
    assert len(summary["tiers"]) == 3


def test_a_run_where_speculation_never_pays_gets_the_plain_launch_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", configs=CONFIGS, failed=0, scenario="never-pays")
    done = run_cli(["export", str(run), "--engine", "sglang"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "at no measured load" in done.stdout
    assert "--speculative" not in done.stdout
    assert not (run / "adaptive-sglang.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "missing-dir", "--engine", "sglang"], "not a run directory"),
        (["export", "--engine", "vllm"], "missing RUN_DIR"),
        (["export", ".", "--engine", "mlc"], "'mlc' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    done = run_cli(args, tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_check_refuses_a_file_the_engine_would_refuse_in_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"1": {"candidate_steps": [1, 3]}, "16": {"candidate_steps": [0]}}))
    done = run_cli(["export", "--engine", "sglang", "--check", str(good)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sglang accepts it" in done.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"method": "eagle3", "num_speculative_tokens": 2,
                               VLLM_TABLE_KEY: [[1, 4, 2], [4, 8, 0]]}))  # fmt: skip
    done = run_cli(["export", "--engine", "vllm", "--check", str(bad)], tmp_path)
    assert done.returncode == 2
    assert f"{bad}: vllm would refuse" in done.stderr and "overlap" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_launch_line_is_the_server_the_run_measured(tmp_path: Path) -> None:
    """An attached SGLang run recorded its server (model folder, tp 8 + EP 8, 96
    requests): the exported line starts that server, not the preset's."""
    run = write_run(tmp_path / "run", configs=CONFIGS, failed=0, simulated=False)
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    served = Deployment(
        model_path="/models/MiniMax-M2.7",
        draft_model_path="/models/eagle3",
        tp=8,
        ep=8,
        extra_args=("--trust-remote-code",),
        max_batch=96,
        engine_version="0.5.23",
    )
    manifest["extra"][SERVED_KEY] = deployment_record(served)
    manifest_path.write_text(json.dumps(manifest))
    done = run_cli(["export", str(run), "--engine", "sglang", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    words = shlex.split(json.loads(done.stdout)["launch"])
    for flag, value in [
        ("--model-path", "/models/MiniMax-M2.7"),
        ("--speculative-draft-model-path", "/models/eagle3"),
        ("--tp-size", "8"),
        ("--ep-size", "8"),
        ("--max-running-requests", "96"),
        ("--cuda-graph-max-bs-decode", "96"),
    ]:
        assert words[words.index(flag) + 1] == value
