"""SpecConfig and SGLang's validity rules: the space, parsing, keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from specbench.errors import InvalidConfigError
from specbench.spec_config import EAGLE3, SpecConfig, config_key, invalid_reason, valid_configs


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
    assert SpecConfig.parse("3,4,8") == SpecConfig(3, 4, 8)
    assert SpecConfig.parse(" 5-4-8 ") == SpecConfig(5, 4, 8)
    assert SpecConfig.parse_list(["3,4,8;5,1,6", "2x2x5"]) == [
        SpecConfig(3, 4, 8),
        SpecConfig(5, 1, 6),
        SpecConfig(2, 2, 5),
    ]
    with pytest.raises(InvalidConfigError, match="expected num_steps,topk,num_draft_tokens"):
        SpecConfig.parse("3,4")
    with pytest.raises(InvalidConfigError, match="topk 1"):
        SpecConfig.parse("3,1,8")
    assert config_key(None) == "baseline"
    assert config_key(SpecConfig(3, 4, 8)) == "3-4-8"


def test_an_invalid_configuration_cannot_be_built() -> None:
    # The one validity check is the constructor's: every path that makes a config meets it.
    with pytest.raises(InvalidConfigError, match="topk 1"):
        SpecConfig(3, 1, 8)
    with pytest.raises(InvalidConfigError, match="out of range"):
        SpecConfig(2, 2, 6)
    with pytest.raises(InvalidConfigError, match="must be an integer"):
        SpecConfig(3, 4, 8.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="unknown speculative method"):
        SpecConfig(3, 4, 8, method="medusa")


def test_method_defaults_to_eagle3_and_the_key_is_derived() -> None:
    config = SpecConfig(3, 4, 8)
    assert config.method == EAGLE3 == "eagle3"
    assert config.key == "3-4-8"
    assert config.as_dict() == {"num_steps": 3, "topk": 4, "num_draft_tokens": 8}
    assert type(SpecConfig(np.int64(3), np.int64(4), np.int64(8)).num_steps) is int  # type: ignore[arg-type]


def test_from_fields_reads_table_rows_old_and_new() -> None:
    # A trials.csv column with gaps (baseline rows) is read back as whole floats; files
    # written so far have no method column.
    frame = pd.DataFrame(
        [
            {"config_key": "baseline", "num_steps": None, "topk": None, "num_draft_tokens": None},
            {"config_key": "3-4-8", "num_steps": 3, "topk": 4, "num_draft_tokens": 8},
        ]
    )
    row = frame.iloc[1].to_dict()
    assert isinstance(row["num_steps"], float)
    assert SpecConfig.from_fields(row) == SpecConfig(3, 4, 8)
    assert SpecConfig.from_fields({**row, "method": "eagle3"}) == SpecConfig(3, 4, 8)
    with pytest.raises(InvalidConfigError, match="num_steps must be an integer"):
        SpecConfig.from_fields(frame.iloc[0].to_dict())
    with pytest.raises(InvalidConfigError, match="must be an integer"):
        SpecConfig.from_fields({"num_steps": 3.5, "topk": 4, "num_draft_tokens": 8})
