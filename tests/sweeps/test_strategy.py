"""Search strategies as objects: what each enqueues, samples and measures in all."""

from __future__ import annotations

import optuna
import pytest

from specbench.errors import BadInputError
from specbench.spec_config import SpecConfig
from specbench.sweeps.space import parse_space
from specbench.sweeps.strategy import (
    DEFAULT_TRIALS,
    STRATEGIES,
    Enqueued,
    Fixed,
    Grid,
    ModelGuided,
    search_strategy,
)

SPACE = parse_space("num_steps=2..3,topk=1|2,num_draft_tokens=3..5")
CONFIGS = (SpecConfig(3, 4, 8), SpecConfig(3, 4, 8), SpecConfig(2, 1, 3))


def _guesses() -> list[Enqueued]:
    return [Enqueued(SpecConfig(2, 2, 4), "model-prior")]


def test_strategies_are_resolved_by_name_once() -> None:
    assert STRATEGIES == ("optuna", "grid", "fixed")
    assert isinstance(search_strategy("optuna"), ModelGuided)
    ready = Grid()
    assert search_strategy(ready) is ready
    with pytest.raises(BadInputError, match="unknown --strategy 'random'"):
        search_strategy("random")


def test_what_each_strategy_enqueues_first() -> None:
    assert ModelGuided().first(SPACE, (), _guesses) == _guesses()
    grid = Grid().first(SPACE, (), _guesses)
    assert [e.config for e in grid] == list(SPACE.configs)
    assert {e.source for e in grid} == {"grid"}
    fixed = Fixed().first(SPACE, CONFIGS, _guesses)
    assert [(e.config, e.source) for e in fixed] == [(c, "fixed") for c in CONFIGS]


def test_how_many_each_strategy_measures() -> None:
    big = parse_space(None)
    assert ModelGuided().target_trials(big, (), None) == DEFAULT_TRIALS
    assert ModelGuided().target_trials(big, (), 100) == 100  # --trials may go past 30
    assert ModelGuided().target_trials(SPACE, (), 100) == len(SPACE)
    assert Grid().target_trials(SPACE, (), None) == len(SPACE)
    assert Grid().target_trials(SPACE, (), 2) == 2
    assert Fixed().target_trials(SPACE, CONFIGS, None) == 2  # a repeated --config counts once
    assert Fixed().describe(SPACE, CONFIGS) == "2 fixed configurations"


def test_samplers_and_bounds() -> None:
    guided = ModelGuided()
    assert isinstance(guided.sampler("tpe", seed=0, n_startup_trials=3), optuna.samplers.TPESampler)
    assert guided.sampler_label("gp") == "gp"
    assert guided.bounds(SPACE) == ((2, 3), (3, 5))
    with pytest.raises(BadInputError, match="unknown sampler"):
        guided.sampler("cmaes", seed=0, n_startup_trials=3)
    # Replaying strategies never sample, so they name no sampler and take the widest
    # bounds: a fixed configuration outside any earlier --space still fits the study.
    for replay in (Grid(), Fixed()):
        assert replay.replays_queue
        assert replay.sampler_label("tpe") is None
        assert replay.bounds(SPACE) == ((1, 8), (2, 64))
        assert isinstance(
            replay.sampler("tpe", seed=0, n_startup_trials=3), optuna.samplers.RandomSampler
        )
