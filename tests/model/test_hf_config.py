"""Targets read from their own config.json: parameter counts against the publishers'
figures, `predict` on every recorded config, and one clear line for what cannot be read.

The configs under tests/data/model_configs are the architecture fields of the models'
public config.json files (no weights); see the README there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from specbench.errors import FileFormatError
from specbench.model.cost import CostModel
from specbench.model.hardware import load_hardware
from specbench.model.hf_config import read_draft_config, read_target_config
from specbench.model.targets import load_target

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "model_configs"
FIXTURES = sorted(p.name for p in CONFIGS.iterdir() if (p / "config.json").is_file())


@dataclass(frozen=True)
class Stated:
    """A parameter count as its publisher states it, in billions, as text: the digits
    given say how finely it was rounded."""

    total: str
    active: str | None
    #: Whether the publisher's "active" counts the input embedding (a lookup, no matmul).
    active_counts_embedding: bool = True


#: Sources: the model cards on the publishers' pages. Conventions differ: Qwen states a
#: non-embedding total apart, so its "activated" includes the embedding; DeepSeek's
#: README_WEIGHTS.md gives 36.6B "including 0.9B for the output Head" (no input
#: embedding), OpenAI's gpt-oss card 116.83B / 5.13B counts the unembedding only.
PUBLISHED: dict[str, Stated] = {
    "Llama-3.1-8B-Instruct": Stated("8.0", None),
    "Qwen3-8B": Stated("8.2", None),
    "Qwen3-30B-A3B": Stated("30.5", "3.3"),
    "DeepSeek-V3": Stated("671", "36.6", active_counts_embedding=False),
    "gpt-oss-120b": Stated("116.83", "5.13", active_counts_embedding=False),
    "MiniMax-M2": Stated("230", "10", active_counts_embedding=False),
    "GLM-4.5": Stated("355", "32", active_counts_embedding=False),
    # 109B is the whole checkpoint, vision encoder included; the text model is read here.
    "Llama-4-Scout-17B-16E": Stated("109", "17"),
    "Mixtral-8x7B-v0.1": Stated("46.7", "12.9"),
}


def _tolerance(stated: str) -> float:
    """Half a unit of the last digit the publisher gave (their rounding) plus 2% for what
    they count and this model leaves out (norms, biases, attention sinks, vision towers)."""
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    value = float(stated)
    return 0.5 * 10.0**-decimals + 0.02 * value


def _close(computed: float, stated: str) -> bool:
    return abs(computed / 1e9 - float(stated)) <= _tolerance(stated)


def test_every_fixture_has_a_published_count() -> None:
    assert set(FIXTURES) == set(PUBLISHED)
    assert len(FIXTURES) >= 8


@pytest.mark.parametrize("name", FIXTURES)
def test_parameter_counts_match_the_publisher(name: str) -> None:
    arch = read_target_config(CONFIGS / name / "config.json").arch
    stated = PUBLISHED[name]
    assert _close(arch.total_params, stated.total), (name, arch.total_params / 1e9)
    if stated.active is not None:
        active = (
            arch.active_params_per_token if stated.active_counts_embedding else arch.active_params
        )
        assert _close(active, stated.active), (name, active / 1e9)


def test_tolerance_follows_the_stated_digits() -> None:
    assert math.isclose(_tolerance("30.5"), 0.05 + 0.61)
    assert math.isclose(_tolerance("671"), 0.5 + 13.42)
    assert not _close(33.0e9, "30.5")  # a layer too many would show


def test_weight_bytes_and_mtp_match_published_sizes() -> None:
    # gpt-oss-120b: the checkpoint is 60.8 GiB (OpenAI's model card), MXFP4 experts.
    gpt = read_target_config(CONFIGS / "gpt-oss-120b" / "config.json")
    assert gpt.quantization == "mxfp4 experts"
    assert abs(gpt.arch.weight_bytes_total() / 2**30 - 60.8) < 0.6
    assert math.isclose(gpt.arch.weight_bytes_per_gpu(4), gpt.arch.weight_bytes_total() / 4)
    # DeepSeek-V3: FP8 weights; 1 MTP module of 11.5B unique parameters (README_WEIGHTS.md).
    ds = read_target_config(CONFIGS / "DeepSeek-V3" / "config.json")
    assert ds.quantization == "fp8" and ds.arch.mtp_layers == 1
    assert abs(ds.arch.mtp_params / 1e9 - 11.5) < 0.5
    assert ds.arch.moe_layer_count == 58 and ds.arch.dense_layer_count == 3
    # MLA caches the 512 + 64 latent per layer, whole on every rank.
    assert ds.arch.kv_bytes_per_token(8) == (512 + 64) * 2 * 61


def _cost(arch: Any) -> CostModel:
    base = load_target("minimax-m2.7")
    target = replace(base, arch=arch)
    return CostModel(target, load_hardware("h100-nvlink", 8))


@pytest.mark.parametrize(
    "name",
    [n for n in FIXTURES if read_target_config(CONFIGS / n / "config.json").arch.num_experts],
)
def test_moe_verify_is_priced_by_its_own_experts(name: str) -> None:
    arch = read_target_config(CONFIGS / name / "config.json").arch
    cost = _cost(arch)
    tokens = np.asarray([1.0, 64.0])
    expected = arch.num_experts * (1 - (1 - arch.experts_per_token / arch.num_experts) ** tokens)
    assert np.allclose(cost.experts_touched(tokens), expected)
    verify = cost.target_parts(np.asarray(64.0), np.asarray(8.0), tree=True)[0]
    wider = replace(arch, experts_per_token=min(arch.num_experts, 2 * arch.experts_per_token))
    assert cost.target_parts(np.asarray(64.0), np.asarray(8.0), tree=True)[0] == verify
    assert _cost(wider).target_parts(np.asarray(64.0), np.asarray(8.0), tree=True)[0] > verify


def _predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specbench", "predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "250"},  # one line per message, whatever the terminal
    )


@pytest.mark.parametrize("name", FIXTURES)
def test_predict_prints_a_table_for_every_fixture(name: str) -> None:
    config = CONFIGS / name / "config.json"
    res = _predict("--target", str(config), "--hardware", "h100-nvlink", "--concurrency", "1,32")
    assert res.returncode == 0, res.stderr
    assert "concurrency 1 — top 5" in res.stdout and "concurrency 32 — top 5" in res.stdout
    assert "decision (SIMULATED" in res.stdout  # the verdict in the sweep's shape follows
    assert "B parameters" in res.stdout and "per GPU at TP" in res.stdout
    assert "assumed: draft" in res.stdout


def test_predict_json_reports_counts_from_the_folder() -> None:
    res = _predict(
        "--target", str(CONFIGS / "Qwen3-30B-A3B"), "--hardware", "h100-nvlink",
        "--concurrency", "1", "--config", "3,1,4", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    target = json.loads(res.stdout)["target"]
    assert target["name"] == "Qwen3-30B-A3B" and target["experts"] == 128
    assert _close(target["total_params"], "30.5")
    assert target["weight_bytes_per_gpu"] == pytest.approx(
        read_target_config(CONFIGS / "Qwen3-30B-A3B" / "config.json").arch.weight_bytes_total()
    )


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "m" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CONFIGS / name / "config.json").read_text())
    return data


@pytest.mark.parametrize(
    ("drop", "needle"),
    [
        (("num_hidden_layers", "vocab_size"), "missing num_hidden_layers, vocab_size"),
        (("moe_intermediate_size",), "unknown MoE layout"),
        (("num_experts_per_tok",), "missing num_experts_per_tok or experts_per_token"),
        (("torch_dtype",), "missing torch_dtype"),
    ],
)
def test_unreadable_architecture_is_one_line_exit_2(
    tmp_path: Path, drop: tuple[str, ...], needle: str
) -> None:
    config = {k: v for k, v in _fixture("Qwen3-30B-A3B").items() if k not in drop}
    res = _predict("--target", str(_write(tmp_path, config)), "--hardware", "h100-nvlink")
    assert res.returncode == 2
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_quantization_is_named(tmp_path: Path) -> None:
    config = {**_fixture("Llama-3.1-8B-Instruct"), "quantization_config": {"quant_method": "hqq"}}
    with pytest.raises(FileFormatError, match="unknown quant_method 'hqq'"):
        read_target_config(_write(tmp_path, config))


def test_a_folder_without_config_is_bad_input(tmp_path: Path) -> None:
    res = _predict("--target", str(tmp_path), "--hardware", "h100-nvlink")
    assert res.returncode == 2 and "needs a config.json" in res.stderr


def test_eagle3_draft_config_nested_or_flat(tmp_path: Path) -> None:
    flat = {
        "architectures": ["LlamaForCausalLMEagle3"], "hidden_size": 4096,
        "intermediate_size": 14336, "num_hidden_layers": 1, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "draft_vocab_size": 32000,
        "torch_dtype": "bfloat16",
    }  # fmt: skip
    default = read_draft_config(_write(tmp_path, flat), target_layers=32)
    assert default.vocab == 32000 and default.aux_layers == (2, 16, 29)
    nested = {**flat, "eagle_config": {"eagle_aux_hidden_state_layer_ids": [1, 15, 28]}}
    assert read_draft_config(_write(tmp_path, nested), 32).aux_layers == (1, 15, 28)
    res = _predict(
        "--target", str(CONFIGS / "Llama-3.1-8B-Instruct"), "--draft", str(tmp_path / "m"),
        "--hardware", "h100-nvlink", "--concurrency", "1", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    target = json.loads(res.stdout)["target"]
    assert target["draft_model_path"] == str(tmp_path / "m")
    assert not any(a.startswith("draft") for a in target["assumptions"])


def test_a_target_without_a_draft_prints_a_placeholder_not_a_sentence() -> None:
    """The line once held '(no draft config: a one-layer EAGLE3 head ...)' quoted as the
    draft path, which SGLang would try to fetch as a model name."""
    res = _predict("--target", str(CONFIGS / "Qwen3-8B"), "--hardware", "h100-nvlink",
                   "--concurrency", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "--speculative-draft-model-path DRAFT_MODEL_PATH " in res.stdout
    assert "(no draft config" not in res.stdout and "put your draft's folder there" in res.stdout
