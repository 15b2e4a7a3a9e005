"""The printed launch line is the server that was measured: batch limits included, an
attached server's own configuration instead of the preset's, paths a shell can run."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from specbench.harness.engine import Deployment
from specbench.harness.served_deployment import (
    SERVED_KEY,
    deployment_from_record,
    deployment_record,
    printed_deployment,
    without_flags,
)
from specbench.harness.sglang import SGLANG
from specbench.harness.shell_line import shell_line, shell_word
from specbench.harness.vllm import VLLM
from specbench.model import load_target
from specbench.spec_config import SpecConfig

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm"

#: What SGLang 0.5.23's /server_info says of a tp 8 + EP 8 speculative server (its
#: ServerArgs.resolved_dict field names; cuda_graph_config as cuda_graph_hook.py folds it).
SGLANG_INFO: dict[str, Any] = {
    "version": "0.5.23",
    "model_path": "/models/MiniMax-M2.7",
    "tp_size": 8,
    "ep_size": 8,
    "max_running_requests": 64,
    "cuda_graph_max_bs_decode": 64,
    "cuda_graph_config": {"decode": {"max_bs": 64}, "prefill": {"max_bs": 16}},
    "speculative_algorithm": "EAGLE3",
    "speculative_draft_model_path": "/models/MiniMax-M2.7-EAGLE3",
    "speculative_num_steps": 3,
    "speculative_eagle_topk": 4,
    "speculative_num_draft_tokens": 8,
}


def _words(line: str) -> list[str]:
    return shlex.split(line)


def _value(words: list[str], flag: str) -> str:
    assert words.count(flag) == 1, f"{flag} appears {words.count(flag)} times in {words}"
    return words[words.index(flag) + 1]


def test_an_attached_sglang_servers_line_is_built_from_its_server_info() -> None:
    preset = Deployment.of(load_target("minimax-m2.7"))  # tp 4, hub paths, no batch limit
    served = SGLANG.served_deployment(SGLANG_INFO, preset)
    _, line = SGLANG.launch_line(served, SpecConfig(3, 4, 8))
    words = _words(line)
    assert _value(words, "--model-path") == "/models/MiniMax-M2.7"
    assert _value(words, "--speculative-draft-model-path") == "/models/MiniMax-M2.7-EAGLE3"
    assert (_value(words, "--tp-size"), _value(words, "--ep-size")) == ("8", "8")
    assert _value(words, "--max-running-requests") == "64"
    assert _value(words, "--cuda-graph-max-bs-decode") == "64"
    assert "--trust-remote-code" in words  # the preset's own flag stays


def test_a_graph_limit_apart_from_the_request_limit_is_kept() -> None:
    info = {**SGLANG_INFO, "cuda_graph_config": {"decode": {"max_bs": 32}}}
    served = SGLANG.served_deployment(info, Deployment.of(load_target("minimax-m2.7")))
    words = _words(SGLANG.baseline_launch_line(served))
    limits = [words[i + 1] for i, w in enumerate(words) if w == "--cuda-graph-max-bs-decode"]
    assert _value(words, "--max-running-requests") == "64"
    assert limits[-1] == "32"  # the last value is the one SGLang keeps


def test_an_attached_vllm_servers_line_is_built_from_its_resolved_config() -> None:
    """Recorded from vLLM 0.32.0 started with bf16 and 8 sequences; the tiny preset says
    float32 and 4."""
    info = {
        **json.loads((DATA / "eagle3-k3-bf16.server_info.json").read_text()),
        "version": "0.32.0",
    }
    preset = Deployment.of(load_target("tiny-llama"))
    served = VLLM.served_deployment(info, preset)
    _, line = VLLM.launch_line(served, SpecConfig(3, 1, 4))
    words = _words(line)
    model = info["vllm_config"]["model_config"]["model"]
    assert words[:3] == ["vllm", "serve", model]
    assert _value(words, "--dtype") == "bfloat16"
    assert _value(words, "--max-num-seqs") == "8"
    assert _value(words, "--max-model-len") == "512"
    assert _value(words, "--served-model-name") == "tiny-llama"
    assert words.count("--enforce-eager") == 1
    spec = json.loads(_value(words, "--speculative-config"))
    assert spec["model"] == info["vllm_config"]["speculative_config"]["model"]
    assert (spec["method"], spec["num_speculative_tokens"]) == ("eagle3", 3)
    assert "float32" not in line and "${" not in line


def test_a_vllm_server_without_dev_mode_keeps_the_presets_flags() -> None:
    """Without /server_info vLLM reports only the model root and k: the preset's flags
    stand for the rest, the model path is the server's."""
    info = {"speculative_config": {"num_speculative_tokens": 3}, "model": "/srv/tiny/target"}
    served = VLLM.served_deployment(info, Deployment.of(load_target("tiny-llama")))
    words = _words(VLLM.baseline_launch_line(served))
    assert words[2] == "/srv/tiny/target"
    assert _value(words, "--dtype") == "float32"


def test_the_record_round_trips_and_expands_paths(monkeypatch: Any) -> None:
    monkeypatch.setenv("SPECBENCH_TINY_MODELS", "/built/tiny")
    raw = Deployment(model_path="${SPECBENCH_TINY_MODELS}/target", tp=2, max_batch=8)
    record = json.loads(json.dumps(deployment_record(raw)))
    back = deployment_from_record(record)
    assert back is not None and back.model_path == "/built/tiny/target"
    assert (back.tp, back.max_batch, back.ep) == (2, 8, None)
    fallback = Deployment(model_path="fallback")
    assert printed_deployment({SERVED_KEY: record}, fallback) == back
    assert printed_deployment({}, fallback) is fallback
    assert deployment_from_record({"model_path": 3}) is None


def test_a_path_whose_variable_is_unset_stays_expandable_when_pasted(tmp_path: Path) -> None:
    word = shell_word("${SPECBENCH_TINY_MODELS}/target dir")
    assert word == '"${SPECBENCH_TINY_MODELS}/target dir"'
    args = ["${SPECBENCH_TINY_MODELS}/t $x", "a'b $x", 'q"`\\', '{"a": "${x}"}']
    line = shell_line(["printf", "%s\\n", *args])
    done = subprocess.run(
        ["bash", "-c", line],
        env={"PATH": "/usr/bin:/bin", "SPECBENCH_TINY_MODELS": str(tmp_path), "x": "X"},
        capture_output=True,
        text=True,
        check=True,
    )
    # ${NAME} expands (a JSON value's too); a bare $x and every other character reach
    # the program as written.
    assert done.stdout.splitlines() == [f"{tmp_path}/t $x", "a'b $x", 'q"`\\', '{"a": "X"}']


def test_without_flags_drops_a_flag_with_its_value_and_a_switch() -> None:
    args = ["--dtype", "float32", "--max-model-len=512", "--enforce-eager", "--keep", "1"]
    kept = without_flags(args, ["--dtype", "--max-model-len"], ["--enforce-eager"])
    assert kept == ("--keep", "1")
