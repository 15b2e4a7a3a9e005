"""The search space: --space parsing, SGLang validity, projection of invalid points."""

from __future__ import annotations

import pytest

from specbench.errors import BadInputError
from specbench.spec_config import SpecConfig, invalid_reason, valid_configs
from specbench.sweeps.space import SearchSpace, chain_space, parse_space


def test_full_space_is_exactly_sglang_valid_configs() -> None:
    space = parse_space(None)
    assert list(space.configs) == valid_configs()
    assert all(
        invalid_reason(c.num_steps, c.topk, c.num_draft_tokens) is None for c in space.configs
    )
    # topk 1 allows only the chain: one configuration per num_steps.
    assert [c for c in space.configs if c.topk == 1] == [
        SpecConfig(s, 1, s + 1) for s in range(1, 9)
    ]
    assert SpecConfig(3, 4, 8) in space
    assert SpecConfig(9, 1, 10) not in space  # valid, but past the num_steps bound
    assert "3-1-8" not in {c.key for c in space.configs}  # an invalid one cannot be built


def test_narrowing_syntax_and_aliases() -> None:
    space = parse_space("num_steps=2..5,topk=1|4|8,num_draft_tokens=4..32")
    assert space.num_steps == (2, 3, 4, 5)
    assert space.topk == (1, 4, 8)
    assert space.num_draft_tokens == tuple(range(4, 33))
    assert set(space.configs) == set(valid_configs((2, 3, 4, 5), (1, 4, 8), range(4, 33)))
    alias = parse_space("steps=3, topk=4, draft_tokens=8|16|4..6")
    assert alias.num_draft_tokens == (4, 5, 6, 8, 16)
    assert [c.key for c in alias.configs] == ["3-4-4", "3-4-5", "3-4-6", "3-4-8"]
    # A topk range means the supported choices inside it.
    assert parse_space("topk=1..4").topk == (1, 2, 4)


def test_describe_round_trips() -> None:
    space = parse_space("num_steps=1..3|6,topk=2|8,num_draft_tokens=2..9|12")
    again = parse_space(space.describe())
    assert again == space
    assert again.configs == space.configs


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("foo=1", "unknown parameter 'foo'"),
        ("num_steps", "'num_steps' is not name=values"),
        ("num_steps=0..3", "num_steps=0 is outside the supported 1..8"),
        ("topk=3", "topk=3 is outside the supported 1|2|4|8"),
        ("num_draft_tokens=2..65", "num_draft_tokens=65 is outside"),
        ("num_steps=5..2", "range '5..2' of num_steps is empty"),
        ("num_steps=a", "cannot read num_steps value 'a'"),
        ("topk=1,topk=2", "topk is given twice"),
    ],
)
def test_bad_space_names_the_bad_part(spec: str, needle: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_space(spec)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_space_is_bad_input() -> None:
    # topk 1 needs num_draft_tokens = num_steps + 1 = 3, which the range excludes.
    with pytest.raises(BadInputError, match="leaves no configuration SGLang accepts"):
        parse_space("num_steps=2,topk=1,num_draft_tokens=8..16")


def test_nearest_projects_invalid_points_into_the_space() -> None:
    space = parse_space(None)
    for config in space.configs[::7]:
        assert space.nearest(config.num_steps, config.topk, config.num_draft_tokens) == config
    # topk 1 with a wrong draft count snaps to the chain of the same depth.
    assert space.nearest(3, 1, 8) == SpecConfig(3, 1, 4)
    # Too many draft tokens for the pool: stays valid and inside the space.
    projected = space.nearest(1, 8, 64)
    assert projected in space
    narrow = parse_space("num_steps=2..3,topk=4,num_draft_tokens=4..8")
    assert narrow.nearest(8, 1, 64) in narrow
    assert narrow.nearest(3, 4, 8) == SpecConfig(3, 4, 8)


def test_search_space_defaults_match_parse_none() -> None:
    assert SearchSpace() == parse_space("")
    assert len(SearchSpace()) == len(valid_configs())


def test_chain_space_keeps_only_chains() -> None:
    space = chain_space(parse_space("num_steps=1..4"), "vllm")
    assert [c.key for c in space.configs] == ["1-1-2", "2-1-3", "3-1-4", "4-1-5"]
    with pytest.raises(BadInputError, match="chain"):
        chain_space(parse_space("topk=4|8"), "vllm")
