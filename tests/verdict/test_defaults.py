"""The configurations a user would launch without specbench."""

from __future__ import annotations

from specbench.spec_config import SpecConfig
from specbench.verdict.defaults import named_defaults


class _Preset:
    card_config = SpecConfig(3, 1, 4)
    auto_config = SpecConfig(5, 4, 8)


def test_sglang_runs_compare_the_card_and_sglangs_own_choice() -> None:
    assert named_defaults(_Preset()) == {
        "model card": SpecConfig(3, 1, 4),
        "SGLang automatic choice": SpecConfig(5, 4, 8),
    }


def test_vllm_has_no_automatic_choice_to_compare() -> None:
    assert named_defaults(_Preset(), sglang=False) == {"model card": SpecConfig(3, 1, 4)}
    assert named_defaults(None) == {}
