"""The method catalogue and each engine's flag builder for every method.

vLLM's names are checked against vLLM's own ``SpeculativeConfig`` where its interpreter
is at hand (SPECBENCH_VLLM_PYTHON); SGLang's go through SGLang's parser in
tests/harness/test_sglang_real_parser.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from specbench.errors import BadInputError, FileFormatError, InvalidConfigError
from specbench.harness.engine import Deployment
from specbench.harness.sglang import SGLANG
from specbench.harness.vllm import VLLM
from specbench.model import load_target
from specbench.spec_config import SpecConfig
from specbench.spec_methods import CATALOGUE, engine_method, parse_methods

VLLM_PYTHON = os.environ.get("SPECBENCH_VLLM_PYTHON")

#: Prints vLLM's method names (SpeculativeMethod, nested Literals flattened) and the
#: keys of --speculative-config (SpeculativeConfig's fields).
_VLLM_NAMES = """
import dataclasses, json, typing
from vllm.config import speculative as s
def flat(t):
    out = []
    for a in typing.get_args(t):
        out += flat(a) if typing.get_args(a) else [a]
    return out
fields = [f.name for f in dataclasses.fields(s.SpeculativeConfig)]
print(json.dumps({"methods": flat(s.SpeculativeMethod), "fields": fields}))
"""


@pytest.mark.skipif(
    not (VLLM_PYTHON and Path(VLLM_PYTHON).exists()), reason="SPECBENCH_VLLM_PYTHON not set"
)
def test_vllm_names_are_vllms_own() -> None:
    assert VLLM_PYTHON is not None
    done = subprocess.run(
        [VLLM_PYTHON, "-c", _VLLM_NAMES], capture_output=True, text=True, timeout=300, check=True
    )
    names = json.loads(done.stdout.strip().splitlines()[-1])
    for entry in CATALOGUE:
        offered = entry.vllm
        if offered is None:
            continue
        assert offered.name in names["methods"], entry.name
        for param in offered.params:
            assert param.name in names["fields"], (entry.name, param.name)


def _deployment() -> Deployment:
    return Deployment(
        model_path="/t",
        draft_model_path="/eagle3",
        method_drafts=(("draft_model", "/small"), ("dflash", "/dflash")),
    )


def _vllm_spec(config: SpecConfig) -> dict[str, object]:
    flags = VLLM.speculative_flags(_deployment(), config)
    spec: dict[str, object] = json.loads(flags[flags.index("--speculative-config") + 1])
    return spec


def test_vllm_line_of_every_method() -> None:
    assert _vllm_spec(SpecConfig(3, 1, 4)) == {
        "method": "eagle3",
        "model": "/eagle3",
        "num_speculative_tokens": 3,
    }
    assert _vllm_spec(SpecConfig.parse("draft_model:3,1,4")) == {
        "method": "draft_model",
        "model": "/small",
        "num_speculative_tokens": 3,
    }
    assert _vllm_spec(SpecConfig.parse("mtp:1,1,2")) == {
        "method": "mtp",
        "num_speculative_tokens": 1,
    }
    assert _vllm_spec(SpecConfig.parse("ngram:4,1,5:prompt_lookup_min=2,prompt_lookup_max=4")) == {
        "method": "ngram",
        "num_speculative_tokens": 4,
        "prompt_lookup_max": 4,
        "prompt_lookup_min": 2,
    }
    assert _vllm_spec(SpecConfig.parse("suffix:8,1,9:suffix_decoding_max_tree_depth=16")) == {
        "method": "suffix",
        "num_speculative_tokens": 8,
        "suffix_decoding_max_tree_depth": 16,
    }
    assert _vllm_spec(SpecConfig.parse("dflash:7,1,8"))["model"] == "/dflash"


def test_sglang_line_of_every_method() -> None:
    d = _deployment()
    assert SGLANG.speculative_flags(d, SpecConfig.parse("mtp:3,4,8"))[:2] == [
        "--speculative-algorithm",
        "NEXTN",
    ]
    assert "--speculative-draft-model-path" not in SGLANG.speculative_flags(
        d, SpecConfig.parse("mtp:3,4,8")
    )
    ngram = SGLANG.speculative_flags(
        d, SpecConfig.parse("ngram:11,1,12:speculative_ngram_max_bfs_breadth=4")
    )
    assert ngram == [
        "--speculative-algorithm",
        "NGRAM",
        "--speculative-num-draft-tokens",
        "12",
        "--speculative-ngram-max-bfs-breadth",
        "4",
    ]
    dflash = SGLANG.speculative_flags(d, SpecConfig.parse("dflash:15,1,16"))
    assert dflash == [
        "--speculative-algorithm",
        "DFLASH",
        "--speculative-draft-model-path",
        "/dflash",
        "--speculative-dflash-block-size",
        "16",
    ]


def test_each_engine_refuses_what_it_does_not_name() -> None:
    with pytest.raises(BadInputError, match="sglang has no suffix speculative method"):
        SGLANG.speculative_flags(_deployment(), SpecConfig.parse("suffix:8,1,9"))
    vllm_ngram = SpecConfig.parse("ngram:4,1,5:prompt_lookup_max=4")
    with pytest.raises(BadInputError, match="SGLang's NGRAM has no parameter prompt_lookup_max"):
        SGLANG.speculative_flags(_deployment(), vllm_ngram)
    sglang_ngram = SpecConfig.parse("ngram:4,1,5:speculative_ngram_max_trie_depth=8")
    assert VLLM.check_config(sglang_ngram) == (
        "vLLM's ngram has no parameter speculative_ngram_max_trie_depth"
    )


def test_configuration_rules_per_method() -> None:
    with pytest.raises(InvalidConfigError, match="ngram drafts a chain"):
        SpecConfig.parse("ngram:3,4,8")
    with pytest.raises(InvalidConfigError, match="eagle3 has no parameter prompt_lookup_max"):
        SpecConfig.parse("eagle3:3,1,4:prompt_lookup_max=3")
    with pytest.raises(InvalidConfigError, match="unknown speculative method 'medusa'"):
        SpecConfig.parse("medusa:3,1,4")
    config = SpecConfig.parse("ngram:3,1,4:prompt_lookup_min=2,prompt_lookup_max=4")
    assert config.key == "ngram-3-1-4_prompt_lookup_max=4_prompt_lookup_min=2"
    assert SpecConfig.from_fields(config.as_dict()) == config
    assert SpecConfig(3, 4, 8).as_dict() == {"num_steps": 3, "topk": 4, "num_draft_tokens": 8}
    assert SpecConfig.parse("3:4:8") == SpecConfig(3, 4, 8)


def test_method_list_and_preset_methods(tmp_path: Path) -> None:
    assert parse_methods("eagle3, ngram,eagle3") == ("eagle3", "ngram")
    with pytest.raises(BadInputError, match="unknown speculative method 'nope'"):
        parse_methods("eagle3,nope")
    assert engine_method("draft_model", "sglang").name == "STANDALONE"
    tiny = load_target("tiny-llama")
    assert tiny.method_names == ("eagle3", "draft_model", "ngram")
    assert dict(tiny.method_drafts)["ngram"] is None
    assert load_target("minimax-m2.7").method_names == ("eagle3",)
    preset = Path(__file__).parent.parent / "specbench/model/data/targets/tiny-llama.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text(preset.read_text().replace('ngram = "none"', 'ngram = "/some/draft"'))
    with pytest.raises(FileFormatError, match='ngram drafts from "none"'):
        load_target(str(broken))


def test_the_simulator_answers_not_simulated_for_a_method_it_has_no_model_of() -> None:
    from specbench.harness.sim_adapter import SIM

    assert SIM.check_config(SpecConfig(3, 4, 8)) is None
    reason = SIM.check_config(SpecConfig.parse("ngram:3,1,4"))
    assert reason is not None and reason.startswith("ngram is not simulated")


def test_the_automatic_choice_is_the_engines_own() -> None:
    """SGLang picks a tree by architecture when given no shape flags; vLLM always needs
    k, so a vLLM sweep measures nothing labelled automatic."""
    target = load_target("minimax-m2.7")
    assert SGLANG.default_config(target) is not None
    assert VLLM.default_config(target) is None
