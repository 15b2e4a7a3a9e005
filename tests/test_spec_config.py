"""SpecConfig and SGLang's validity rules: the space, parsing, keys."""

from __future__ import annotations

import pytest

from specbench.errors import InvalidConfigError
from specbench.spec_config import (
    SpecConfig,
    config_key,
    invalid_reason,
    make_config,
    parse_config,
    parse_configs,
    valid_configs,
)


def test_sglang_validity_rules() -> None:
    assert invalid_reason(3, 4, 8) is None
    assert invalid_reason(3, 1, 4) is None
    # topk 1 forces a chain of num_steps + 1 tokens.
    assert "num_steps + 1" in (invalid_reason(3, 1, 8) or "")
    # More verified nodes than the candidate pool: SGLang's 'index out of range'.
    assert "out of range" in (invalid_reason(2, 2, 6) or "")
    assert invalid_reason(2, 2, 5) is None
    assert invalid_reason(1, 4, 1) is not None
    assert invalid_reason(0, 4, 2) is not None


def test_valid_space_matches_rules_and_is_sorted() -> None:
    space = valid_configs()
    assert space == sorted(space)
    assert len(space) == len(set(space))
    assert all(invalid_reason(c.num_steps, c.topk, c.num_draft_tokens) is None for c in space)
    # Brute-force count of the same rules, written independently.
    expected = 0
    for steps in range(1, 9):
        for topk in (1, 2, 4, 8):
            for ndt in range(2, 65):
                chain_ok = topk != 1 or ndt == steps + 1
                if chain_ok and ndt - 1 <= steps * topk:
                    expected += 1
    assert len(space) == expected
    assert SpecConfig(3, 4, 8) in space


def test_parse_config_forms_and_errors() -> None:
    assert parse_config("3,4,8") == SpecConfig(3, 4, 8)
    assert parse_config(" 5-4-8 ") == SpecConfig(5, 4, 8)
    assert parse_configs(["3,4,8;5,1,6", "2x2x5"]) == [
        SpecConfig(3, 4, 8),
        SpecConfig(5, 1, 6),
        SpecConfig(2, 2, 5),
    ]
    with pytest.raises(InvalidConfigError, match="expected num_steps,topk,num_draft_tokens"):
        parse_config("3,4")
    with pytest.raises(InvalidConfigError, match="topk 1"):
        make_config(3, 1, 8)
    assert config_key(None) == "baseline"
    assert config_key(SpecConfig(3, 4, 8)) == "3-4-8"
