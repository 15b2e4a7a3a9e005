"""The vLLM adapter against the protocol fixtures recorded from a real vLLM 0.32.0."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from specbench.errors import BadInputError, ServerError
from specbench.harness.engine import Deployment
from specbench.harness.engines import get_engine
from specbench.harness.openai_client import openai_payload, read_chunk
from specbench.harness.prompts import Prompt
from specbench.harness.vllm import VLLM, method_of, parse_spec_counters
from specbench.model import load_target
from specbench.spec_config import SpecConfig

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm"
DEPLOYMENT = Deployment(
    model_path="/m/target",
    draft_model_path="/m/eagle3",
    algorithm="EAGLE3",
    extra_args=("--dtype", "float32", "--max-num-seqs", "4"),
)


def _chunks(name: str) -> list[dict[str, object]]:
    lines = (DATA / name).read_text().splitlines()
    return [
        json.loads(line[len("data:") :])
        for line in lines
        if line.startswith("data:") and line.strip() != "data: [DONE]"
    ]


def test_registered_under_its_name() -> None:
    assert get_engine("vllm") is VLLM


def test_speculative_server_adds_only_the_speculative_flags_to_the_baselines() -> None:
    base = VLLM.launch_args(DEPLOYMENT, None, host="127.0.0.1", port=8000)
    spec = VLLM.launch_args(DEPLOYMENT, SpecConfig(3, 1, 4), host="127.0.0.1", port=8000)
    assert "--speculative-config" not in base and "--per-request-spec-decode-metrics" not in base
    i = spec.index("--speculative-config")
    assert json.loads(spec[i + 1]) == {
        "method": "eagle3",
        "model": "/m/eagle3",
        "num_speculative_tokens": 3,
    }
    assert spec[i + 2 : i + 4] == ["--per-request-spec-decode-metrics", "summary"]
    assert spec[:i] + spec[i + 4 :] == base  # equal terms: the same dtype, max-num-seqs...


@pytest.mark.parametrize(
    ("algorithm", "method", "has_model"),
    [("EAGLE3", "eagle3", True), ("draft_model", "draft_model", True), ("NGRAM", "ngram", False)],
)
def test_method_follows_the_preset_algorithm(algorithm: str, method: str, has_model: bool) -> None:
    deployment = Deployment(model_path="/t", draft_model_path="/d", algorithm=algorithm, draft_tp=2)
    spec = VLLM.speculative_config(deployment, SpecConfig(2, 1, 3))
    assert spec["method"] == method
    assert ("model" in spec) is has_model
    assert spec["draft_tensor_parallel_size"] == 2


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(BadInputError, match="no speculative method"):
        method_of("MEDUSA-TREE")


def test_launch_line_is_vllm_serve_and_parses_back() -> None:
    flags, line = VLLM.launch_line(DEPLOYMENT, SpecConfig(4, 1, 5))
    argv = shlex.split(line)
    assert argv[:3] == ["vllm", "serve", "/m/target"]
    assert "--per-request-spec-decode-metrics" in flags
    parsed = VLLM.parse_launch_args(argv[2:])
    assert parsed.model_path == "/m/target"
    assert (parsed.num_steps, parsed.topk, parsed.num_draft_tokens) == (4, 1, 5)
    assert parsed.algorithm == "eagle3" and parsed.draft_model_path == "/m/eagle3"


def test_trees_are_refused_chains_accepted() -> None:
    assert VLLM.check_config(SpecConfig(3, 1, 4)) is None
    reason = VLLM.check_config(SpecConfig(3, 4, 8))
    assert reason is not None and "chain" in reason


def test_config_from_recorded_server_info() -> None:
    info = json.loads((DATA / "eagle3-k3.server_info.speculative.json").read_text())
    assert VLLM.config_from_server_info(info) == SpecConfig(3, 1, 4)
    nested = {"vllm_config": {"speculative_config": info["speculative_config"]}}
    assert VLLM.config_from_server_info(nested) == SpecConfig(3, 1, 4)
    base = json.loads((DATA / "baseline.server_info.speculative.json").read_text())
    assert VLLM.config_from_server_info(base) is None
    with pytest.raises(ServerError):
        VLLM.config_from_server_info({"speculative_config": {"method": "eagle3"}})


def test_config_problems_compare_k_and_the_batch_limit_with_recorded_server_info() -> None:
    info = json.loads((DATA / "eagle3-k3.server_info.speculative.json").read_text())
    batch4 = Deployment(model_path="/m/target", max_batch=4)
    assert VLLM.config_problems(info, batch4, SpecConfig(3, 1, 4)) == []
    assert VLLM.config_problems(info, batch4, SpecConfig(2, 1, 3)) == [
        "the server runs 3-1-4, not 2-1-3"
    ]
    batch8 = Deployment(model_path="/m/target", max_batch=8)
    assert VLLM.config_problems(info, batch8, SpecConfig(3, 1, 4)) == ["max_num_seqs is 4, not 8"]
    base = json.loads((DATA / "baseline.server_info.speculative.json").read_text())
    assert VLLM.config_problems(base, batch4, None) == []
    assert VLLM.config_problems(base, batch4, SpecConfig(3, 1, 4)) == [
        "the server runs no speculation, not 3-1-4"
    ]
    # Without dev mode (k read off /metrics) there is no scheduler to compare.
    metrics_only = {"speculative_config": {"num_speculative_tokens": 3}, "info_source": "metrics"}
    assert VLLM.config_problems(metrics_only, batch8, SpecConfig(3, 1, 4)) == []


def test_batch_limit_is_the_same_max_num_seqs_for_baseline_and_speculative_servers() -> None:
    deployment = Deployment(model_path="/m/target", draft_model_path="/m/eagle3", max_batch=16)
    for config in (None, SpecConfig(3, 1, 4)):
        args = VLLM.launch_args(deployment, config)
        assert args[args.index("--max-num-seqs") + 1] == "16"
    assert "--max-num-seqs" not in VLLM.launch_args(Deployment(model_path="/m/target"), None)


def test_counters_parsed_from_recorded_metrics_skip_created_gauges() -> None:
    after = parse_spec_counters((DATA / "eagle3-k3.metrics-after.txt").read_text())
    assert after is not None
    assert (after.drafts, after.accepted, after.draft_tokens) == (658.0, 1680.0, 1974.0)
    assert after.per_position == (602.0, 566.0, 512.0)
    assert after.tau == pytest.approx(1 + 1680 / 658)
    assert parse_spec_counters((DATA / "baseline.metrics-after.txt").read_text()) is None


def test_request_stats_from_the_recorded_usage_chunk() -> None:
    final = read_chunk(_chunks("eagle3-k3.completions.stream.txt")[-1]).final
    stats = VLLM.request_stats(final)
    assert stats.completion_tokens == 24 and stats.prompt_tokens == 6
    assert stats.spec_verify_ct == 6 and stats.spec_accepted_tokens == 18
    assert stats.spec_accept_length == pytest.approx(4.0)
    assert stats.spec_accept_histogram == [0, 0, 0, 6]


def test_baseline_usage_chunk_has_no_speculative_stats() -> None:
    final = read_chunk(_chunks("baseline.completions.stream.txt")[-1]).final
    stats = VLLM.request_stats(final)
    assert stats.completion_tokens == 24 and stats.spec_verify_ct is None


def test_chat_role_chunk_carries_no_token_and_text_is_joined() -> None:
    readings = [read_chunk(c) for c in _chunks("eagle3-k3.chat.stream.txt")]
    assert readings[0].tokens == 0
    text = "".join(r.text for r in readings)
    body = json.loads((DATA / "eagle3-k3.chat.json").read_text())
    assert text == body["choices"][0]["message"]["content"]


def test_token_ids_count_every_token_of_a_chunk() -> None:
    chunk = {"choices": [{"index": 0, "text": " b c d e", "token_ids": [5, 6, 7, 8]}]}
    assert read_chunk(chunk).tokens == 4


def test_payload_is_greedy_ignores_eos_and_asks_for_usage() -> None:
    body = openai_payload(Prompt("p", "chat", "3 4 5"), 32, "tiny-llama", chat=False)
    assert body["prompt"] == "3 4 5" and body["ignore_eos"] is True
    assert body["temperature"] == 0.0 and body["stream_options"] == {"include_usage": True}
    chat = openai_payload(Prompt("p", "chat", "hi", chat=True), 8, "m", chat=True)
    assert chat["messages"] == [{"role": "user", "content": "hi"}] and "prompt" not in chat


def test_tiny_llama_preset_expands_its_model_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECBENCH_TINY_MODELS", "/cache/tiny")
    deployment = Deployment.of(load_target("tiny-llama"))
    assert deployment.model_path == "/cache/tiny/target"
    assert deployment.draft_model_path == "/cache/tiny/eagle3"


def test_baseline_launch_line_is_the_same_vllm_serve_without_speculation() -> None:
    line = VLLM.baseline_launch_line(DEPLOYMENT)
    assert line.startswith("vllm serve /m/target ")
    assert "--speculative-config" not in line
    flags, spec_line = VLLM.launch_line(DEPLOYMENT, SpecConfig(3, 1, 4))
    spec_words = shlex.split(spec_line)
    i = spec_words.index(flags[0])
    assert spec_words[:i] + spec_words[i + len(flags) :] == shlex.split(line)
