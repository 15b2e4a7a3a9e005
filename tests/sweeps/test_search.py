"""Proposing configurations: enqueue order, dedupe, reuse, projection, parallel rivals."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from specbench.model import load_target
from specbench.spec_config import SpecConfig
from specbench.sweeps.search import (
    ATTR_CONFIG,
    ATTR_CONFIG_FIELDS,
    ATTR_REUSED,
    ATTR_SKIPPED,
    SOURCE_AUTO,
    SOURCE_CARD,
    SOURCE_PRIOR,
    ConfigSearch,
    Enqueued,
    make_sampler,
    trial_config,
)
from specbench.sweeps.setup import prior_candidates
from specbench.sweeps.space import parse_space
from tests.support.sweeps import truth_model

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(strategy: str = "optuna", seed: int = 0) -> optuna.Study:
    return optuna.create_study(
        direction="maximize", sampler=make_sampler(strategy, "tpe", seed=seed, n_startup_trials=5)
    )


def test_prior_candidates_order_prior_top_then_card_then_auto() -> None:
    target = load_target("minimax-m2.7")
    prior = truth_model()
    space = parse_space(None)
    items = prior_candidates(prior, target, space, concurrency=1, top=4)
    assert [i.source for i in items] == [SOURCE_PRIOR] * 4 + [SOURCE_CARD, SOURCE_AUTO]
    predicted = {
        p.config: p.speedup
        for p in prior.predict_grid(list(space.configs), [1])
        if p.config is not None
    }
    ranked = sorted(predicted, key=lambda c: -predicted[c])
    top = [i.config for i in items[:4]]
    # The prior's best for each of its four best depths, best first.
    assert top[0] == ranked[0]
    assert len({c.num_steps for c in top}) == 4
    for config in top:
        same_depth = [c for c in ranked if c.num_steps == config.num_steps]
        assert config == same_depth[0]
    assert [predicted[c] for c in top] == sorted((predicted[c] for c in top), reverse=True)
    assert items[4].config == target.card_config
    assert items[5].config == target.auto_config
    # Without diversity: simply the four best predictions.
    plain = prior_candidates(prior, target, space, concurrency=1, top=4, diverse=False)
    assert [i.config for i in plain[:4]] == ranked[:4]


def test_card_and_auto_outside_a_narrowed_space_are_left_out() -> None:
    target = load_target("minimax-m2.7")
    space = parse_space("num_steps=1..2")  # the card (3,4,8) and auto (5,4,8) are outside
    items = prior_candidates(truth_model(), target, space, concurrency=1, top=3)
    # Only two depths exist, so only two diverse picks, and nothing else.
    assert [i.source for i in items] == [SOURCE_PRIOR] * 2
    assert all(i.config in space for i in items)
    assert {i.config.num_steps for i in items} == {1, 2}


def test_enqueue_keeps_order_and_drops_duplicates() -> None:
    study = _study()
    search = ConfigSearch(study, parse_space(None), "optuna", worker="test:1")
    a, b, c = SpecConfig(3, 4, 8), SpecConfig(5, 4, 8), SpecConfig(2, 1, 3)
    added = search.enqueue(
        [
            Enqueued(a, SOURCE_PRIOR),
            Enqueued(b, SOURCE_PRIOR),
            Enqueued(a, SOURCE_CARD),
            Enqueued(c, SOURCE_AUTO),
        ]
    )
    assert [(e.config, e.source) for e in added] == [
        (a, SOURCE_PRIOR),
        (b, SOURCE_PRIOR),
        (c, SOURCE_AUTO),
    ]
    # Enqueueing again (a resumed run) adds nothing.
    assert search.enqueue([Enqueued(a, SOURCE_CARD), Enqueued(b, SOURCE_PRIOR)]) == []
    proposals = []
    for _ in range(3):
        proposal = search.propose()
        assert proposal is not None
        proposals.append((proposal.config, proposal.source))
        search.complete(proposal, 1.0, [{"concurrency": 1}])
    assert proposals == [(a, SOURCE_PRIOR), (b, SOURCE_PRIOR), (c, SOURCE_AUTO)]
    # Measured configurations are not enqueued again either.
    assert search.enqueue([Enqueued(c, SOURCE_CARD)]) == []


def test_a_measured_configuration_is_reused_not_measured_again() -> None:
    study = _study()
    search = ConfigSearch(study, parse_space(None), "optuna", worker="test:1")
    config = SpecConfig(3, 4, 8)
    study.enqueue_trial(config.as_dict(), user_attrs={"source": "card"})
    study.enqueue_trial(config.as_dict(), user_attrs={"source": "card"})  # a duplicate slipped in
    first = search.propose()
    assert first is not None and first.config == config
    search.complete(first, 1.7, [{"concurrency": 1, "speedup": 1.7}])
    second = search.propose()
    assert second is not None and second.config != config
    reused = [t for t in study.trials if ATTR_REUSED in t.user_attrs]
    assert len(reused) == 1
    assert reused[0].value == pytest.approx(1.7)
    assert reused[0].user_attrs[ATTR_REUSED] == first.number


def test_tpe_projection_never_hands_out_invalid_or_repeated_configs() -> None:
    study = _study(seed=3)
    space = parse_space("num_steps=1..4,topk=1|2|4,num_draft_tokens=2..12")
    search = ConfigSearch(study, space, "optuna", worker="test:1")
    seen: list[SpecConfig] = []
    while True:
        proposal = search.propose()
        if proposal is None:
            break
        assert proposal.config in space
        assert proposal.config not in seen
        seen.append(proposal.config)
        c = proposal.config
        search.complete(proposal, 1.0 + 0.1 * c.num_steps - 0.01 * c.num_draft_tokens, [{}])
        if len(seen) > len(space):
            pytest.fail("more proposals than configurations")
    # The search stops only when every configuration is measured or asks run out.
    assert len(seen) >= len(space) // 2
    assert search.measured_count() == len(seen)


def test_a_configuration_in_flight_on_another_worker_is_skipped() -> None:
    study = _study("fixed")
    space = parse_space(None)
    one = ConfigSearch(study, space, "fixed", worker="host-a:1")
    two = ConfigSearch(study, space, "fixed", worker="host-b:2")
    config = SpecConfig(3, 4, 8)
    study.enqueue_trial(config.as_dict(), user_attrs={"source": "fixed"})
    study.enqueue_trial(config.as_dict(), user_attrs={"source": "fixed"})
    mine = one.propose()
    assert mine is not None and mine.config == config
    assert two.propose() is None  # its only queued trial duplicates one in flight
    skipped = [t for t in study.trials if ATTR_SKIPPED in t.user_attrs]
    assert len(skipped) == 1 and skipped[0].state == TrialState.PRUNED


def test_fixed_strategy_stops_when_its_queue_is_empty() -> None:
    study = _study("fixed")
    search = ConfigSearch(study, parse_space(None), "fixed", worker="test:1")
    search.enqueue([Enqueued(SpecConfig(3, 4, 8), "fixed")])
    proposal = search.propose()
    assert proposal is not None
    search.fail(proposal, "server died", rows=[{"concurrency": 1, "state": "failed"}])
    assert search.propose() is None
    assert search.measured_count() == 1  # a server failure counts as measured


def test_a_trial_keeps_its_configuration_beside_its_key() -> None:
    study = _study("fixed")
    search = ConfigSearch(study, parse_space(None), "fixed", worker="test:1")
    search.enqueue([Enqueued(SpecConfig(3, 4, 8), "fixed")])
    proposal = search.propose()
    assert proposal is not None
    search.fail(proposal, "server died")  # no rows: only the stored fields say what it ran
    trial = study.trials[-1]
    assert trial.user_attrs[ATTR_CONFIG] == "3-4-8"
    assert trial.user_attrs[ATTR_CONFIG_FIELDS] == {
        "method": "eagle3",
        "num_steps": 3,
        "topk": 4,
        "num_draft_tokens": 8,
    }
    assert trial_config(trial) == SpecConfig(3, 4, 8)


def test_a_trial_stored_before_the_config_fields_is_read_by_its_key() -> None:
    # Older studies hold only the key; the configuration is the one whose derived key
    # matches: from its rows, its parameters (not the projected config), or the space.
    study = _study()
    measured = study.ask()
    measured.set_user_attr(ATTR_CONFIG, "20-1-21")  # a --config past the search bounds
    measured.set_user_attr("rows", [{"concurrency": 1, "num_steps": 20, "topk": 1,
                                      "num_draft_tokens": 21}])  # fmt: skip
    study.tell(measured, 1.1)
    for params, key in (((12, 1, 13), "12-1-13"), ((3, 2, 9), "3-2-7")):
        study.enqueue_trial(
            dict(zip(("num_steps", "topk", "num_draft_tokens"), params, strict=True))
        )
        trial = study.ask()
        trial.set_user_attr(ATTR_CONFIG, key)  # 3-2-9 was projected onto 3-2-7
        study.tell(trial, state=TrialState.FAIL)
    assert [trial_config(t) for t in study.trials] == [
        SpecConfig(20, 1, 21),
        SpecConfig(12, 1, 13),
        SpecConfig(3, 2, 7),
    ]


def test_gp_sampler_is_available() -> None:
    sampler = make_sampler("optuna", "gp", seed=0, n_startup_trials=3)
    assert isinstance(sampler, optuna.samplers.GPSampler)


def test_a_fixed_list_replays_each_method_whole() -> None:
    """Configurations of several methods with equal numbers are distinct trials, each
    proposed with its method and parameters (they are no Optuna dimension of a list)."""
    study = _study("fixed")
    search = ConfigSearch(study, parse_space(None), "fixed", worker="test:1")
    configs = [
        SpecConfig(3, 1, 4),
        SpecConfig.parse("draft_model:3,1,4"),
        SpecConfig.parse("ngram:3,1,4:prompt_lookup_max=3,prompt_lookup_min=1"),
    ]
    assert len(search.enqueue([Enqueued(c, "fixed") for c in configs])) == 3
    proposed = []
    while (proposal := search.propose()) is not None:
        proposed.append(proposal.config)
        search.fail(proposal, "not measured here")
    assert proposed == configs
    assert trial_config(study.trials[-1]) == configs[-1]
