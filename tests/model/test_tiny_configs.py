"""The tiny models built for vLLM's CPU engine (tools/tiny_models.py) read from their own
config.json files the same way as any model, and agree with the shipped tiny-llama preset.

Needs SPECBENCH_TINY_MODELS (the folder tools/tiny_models.py prints); CI sets it and
SPECBENCH_REQUIRE_VLLM=1, so there it runs (it reads two small JSON files: well under a
second) instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from specbench.model.hf_config import read_draft_config, read_target_config
from specbench.model.targets import load_target

TINY = os.environ.get("SPECBENCH_TINY_MODELS")
REQUIRED = os.environ.get("SPECBENCH_REQUIRE_VLLM") == "1"

pytestmark = pytest.mark.skipif(
    not (TINY and Path(TINY).is_dir()) and not REQUIRED,
    reason="SPECBENCH_TINY_MODELS not set (see .ci/vllm.sh)",
)


def _built(kind: str) -> Path:
    assert TINY, "SPECBENCH_TINY_MODELS must name the tiny models' folder"
    path = Path(TINY) / kind / "config.json"
    assert path.is_file(), f"{path} missing: run tools/tiny_models.py"
    return path


def test_built_target_config_is_the_shipped_one() -> None:
    built = read_target_config(_built("target"))
    preset = load_target("tiny-llama")
    assert built.arch == preset.arch
    assert built.architecture == preset.architecture == "LlamaForCausalLM"
    assert built.quantization == "fp32" and built.arch.weight_bytes == 4.0


def test_built_eagle3_head_matches_the_preset_draft() -> None:
    preset = load_target("tiny-llama")
    head = read_draft_config(_built("eagle3"), preset.arch.layers)
    assert head.aux_layers == preset.draft.aux_layers == (1, 2, 3)
    for field in ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab"):
        assert getattr(head, field) == getattr(preset.draft, field), field


def test_predict_reads_the_built_folders(tmp_path: Path) -> None:
    target = load_target(str(_built("target").parent), str(_built("eagle3").parent))
    assert target.arch == load_target("tiny-llama").arch
    assert target.draft.aux_layers == (1, 2, 3) and target.assumptions[-1].startswith("per-layer")
