"""Choosing the next configuration to measure: grid, fixed list, or model-guided Optuna.

All three strategies go through one Optuna study, so that resuming, several workers and
the rebuilt results work the same way for each: grid and fixed enqueue their whole list
and workers pop it; the Optuna strategy enqueues the performance model's best guesses,
the target card's flags and SGLang's auto default, then lets TPE (or GP) take over.

Invalid sampled points. Optuna's distributions cannot express SGLang's coupled rules
(topk 1 forces num_draft_tokens = num_steps + 1; num_draft_tokens - 1 <= num_steps *
topk), so a sampled point may be invalid. We *project* it onto the nearest valid
configuration (SearchSpace.nearest) and give the trial that configuration's value,
instead of marking it infeasible. Why: with topk=1 only one num_draft_tokens of 63 is
valid, so most of the box is invalid; infeasible trials would teach TPE nothing about
speed and burn most proposals, whereas a projected trial tells TPE "this region behaves
like its nearest valid neighbour", which is true and keeps every proposal informative.
Projection makes duplicates likely, so a configuration already measured in the study is
never measured again: the new trial reuses the earlier value at no cost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from specbench.errors import BadInputError, InvalidConfigError
from specbench.spec_config import SpecConfig, valid_configs
from specbench.sweeps.space import SearchSpace
from specbench.sweeps.storage import ATTR_ERROR, ATTR_INTERRUPTED, ATTR_WORKER, worker_gone
from specbench.sweeps.strategy import (
    SAMPLERS,
    STRATEGIES,
    Bounds,
    Enqueued,
    SearchStrategy,
    search_strategy,
)

#: Trial user attributes (the study is the single source of truth for results).
ATTR_SOURCE = "source"
ATTR_CONFIG = "config_key"
#: The measured configuration itself (method and numbers), beside its key: a trial's
#: configuration is read from here, never parsed back out of the key.
ATTR_CONFIG_FIELDS = "config"
#: The whole configuration an enqueued trial replays (method and parameters included).
ATTR_QUEUED = "queued_config"
ATTR_ROWS = "rows"  # per-concurrency metric rows of a measured trial
#: Study user attribute: numbers of failed trials superseded by --retry-failed (Optuna
#: cannot change a finished trial's attributes, so the mark lives on the study).
STUDY_RETRIED = "retried_trials"
ATTR_REUSED = "reused_from"  # trial number whose measurement this trial reuses
ATTR_SKIPPED = "skipped"  # why a trial measured nothing (duplicate in flight, unused)
ATTR_LOG_TAIL = "log_tail"
ATTR_PRUNED = "pruned"  # why the trial's higher loads were not measured

#: Sources of enqueued configurations, in enqueue order.
SOURCE_PRIOR = "model-prior"
SOURCE_CARD = "card"
SOURCE_AUTO = "sglang-auto"
SOURCE_RETRY = "retry"

#: Parameter bounds of the Optuna distributions. topk is categorical over every choice
#: SGLang supports, whatever --space says, because Optuna refuses a study whose
#: categorical choices change between runs; a narrowed topk is handled by projection.
TOPK_DISTRIBUTION: tuple[int, ...] = (1, 2, 4, 8)

#: A study asks at most this many times per measurement before giving up: projection
#: and reuse make most late proposals free duplicates once the good region is covered.
MAX_ASKS_PER_MEASUREMENT = 40
#: Reused proposals in a row before the search steps to the nearest unmeasured point.
REUSE_PATIENCE = 3

#: With several workers, how long a fresh claim waits before checking for a rival that
#: claimed the same configuration at the same moment (Optuna storages offer no lock).
CLAIM_SETTLE_S = 0.5
#: Another worker counts as active when it finished a trial this recently.
OTHERS_RECENT = timedelta(minutes=10)


def make_sampler(
    strategy: str | SearchStrategy, sampler: str, *, seed: int, n_startup_trials: int
) -> optuna.samplers.BaseSampler:
    """The sampler of a strategy (named or ready)."""
    return search_strategy(strategy).sampler(sampler, seed=seed, n_startup_trials=n_startup_trials)


def config_params(config: SpecConfig) -> dict[str, Any]:
    """The Optuna parameters of a configuration (its numbers; the study searches one
    method)."""
    return config.as_dict()


def config_fields(config: SpecConfig) -> dict[str, Any]:
    """What a trial stores of its configuration under ``ATTR_CONFIG_FIELDS``."""
    return {"method": config.method, **config.as_dict()}


def trial_config(trial: FrozenTrial) -> SpecConfig | None:
    """The configuration a trial measured (after projection), if it got that far."""
    key = trial.user_attrs.get(ATTR_CONFIG)
    if not isinstance(key, str):
        return None
    stored = trial.user_attrs.get(ATTR_CONFIG_FIELDS)
    if isinstance(stored, Mapping):
        return SpecConfig.from_fields(stored)
    return _older_trial_config(trial, key)


def _older_trial_config(trial: FrozenTrial, key: str) -> SpecConfig | None:
    """A trial stored before ``ATTR_CONFIG_FIELDS`` existed has only the key: its
    configuration is the one whose derived key matches, among its measured rows, its
    enqueued or sampled parameters, and every valid configuration."""
    for fields in _described_configs(trial):
        with contextlib.suppress(InvalidConfigError):
            config = SpecConfig.from_fields(fields)
            if config.key == key:
                return config
    return _valid_configs_by_key().get(key)


def _described_configs(trial: FrozenTrial) -> Iterator[Mapping[str, Any]]:
    rows = trial.user_attrs.get(ATTR_ROWS)
    if isinstance(rows, list):
        yield from (row for row in rows if isinstance(row, Mapping))
    fixed = trial.system_attrs.get("fixed_params")
    if isinstance(fixed, Mapping):
        yield fixed
    yield trial.params


@cache
def _valid_configs_by_key() -> dict[str, SpecConfig]:
    return {c.key: c for c in valid_configs()}


def retried_trials(study: optuna.Study) -> frozenset[int]:
    """Numbers of the failed trials that --retry-failed superseded."""
    stored = study.user_attrs.get(STUDY_RETRIED) or []
    return frozenset(int(n) for n in stored if isinstance(n, int))


def is_measurement(trial: FrozenTrial, retried: frozenset[int] = frozenset()) -> bool:
    """Trials that ran a server for their configuration (complete, or a server failure).

    Interrupted trials are not: their configuration may be measured again on resume.
    """
    attrs = trial.user_attrs
    if ATTR_REUSED in attrs or ATTR_SKIPPED in attrs or trial.number in retried:
        return False
    if trial.state == TrialState.COMPLETE or ATTR_PRUNED in trial.user_attrs:
        return ATTR_ROWS in trial.user_attrs
    if trial.state == TrialState.FAIL:
        return ATTR_ROWS in trial.user_attrs and not trial.user_attrs.get(ATTR_INTERRUPTED)
    return False


@dataclass
class Proposal:
    """A configuration this worker now owns and must measure (or fail)."""

    trial: Trial
    config: SpecConfig
    source: str
    sampled: tuple[int, int, int]

    @property
    def number(self) -> int:
        return self.trial.number


@dataclass
class ConfigSearch:
    """Proposes configurations from a study; never hands out one already measured."""

    study: optuna.Study
    space: SearchSpace
    #: The strategy, or its --strategy name (resolved once, here).
    strategy: SearchStrategy | str
    sampler_name: str = "tpe"
    worker: str = ""
    asks: int = 0
    reused: int = 0
    _strategy: SearchStrategy = field(init=False)
    _bounds: Bounds = field(init=False)

    def __post_init__(self) -> None:
        self._strategy = search_strategy(self.strategy)
        self._bounds = self._strategy.bounds(self.space)

    # -- enqueueing ------------------------------------------------------------
    def enqueue(self, items: Iterable[Enqueued]) -> list[Enqueued]:
        """Enqueue configurations in order; returns what was really added.

        Skipped: configurations measured, being measured or already queued, and repeats
        within ``items``. Optuna's own ``skip_if_exists`` is not used because it also
        skips configurations whose trial was *interrupted*, and then a resumed grid or
        fixed sweep would never measure them.
        """
        seen = set(self.measurements()) | {str(t.user_attrs[ATTR_CONFIG]) for t in self.in_flight()}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            params = trial.system_attrs.get("fixed_params", trial.params)
            with contextlib.suppress(InvalidConfigError):
                seen.add(SpecConfig.from_fields(params).key)
        added: list[Enqueued] = []
        for item in items:
            if item.config.key in seen:
                continue
            seen.add(item.config.key)
            self.study.enqueue_trial(
                config_params(item.config),
                user_attrs={ATTR_SOURCE: item.source, ATTR_QUEUED: config_fields(item.config)},
            )
            added.append(item)
        return added

    def waiting(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    # -- bookkeeping -------------------------------------------------------------
    def measurements(self) -> dict[str, FrozenTrial]:
        """config_key -> the first trial that measured it."""
        out: dict[str, FrozenTrial] = {}
        retried = retried_trials(self.study)
        for trial in self.study.get_trials(deepcopy=False):
            if is_measurement(trial, retried):
                key = str(trial.user_attrs[ATTR_CONFIG])
                out.setdefault(key, trial)
        return out

    def in_flight(self) -> list[FrozenTrial]:
        """RUNNING trials that already own a configuration (any worker)."""
        return [
            t
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if ATTR_CONFIG in t.user_attrs and ATTR_SKIPPED not in t.user_attrs
        ]

    def measured_count(self) -> int:
        return len(self.measurements())

    def exhausted(self) -> bool:
        """Every configuration of the space measured (or being measured)."""
        done = set(self.measurements()) | {str(t.user_attrs[ATTR_CONFIG]) for t in self.in_flight()}
        return all(c.key in done for c in self.space.configs)

    def retry_failed(self) -> list[SpecConfig]:
        """Make failed measurements measurable again; the configurations to re-measure.

        A failed trial (its server crashed or every request failed) counts as measured,
        so a resume never repeats it. Marking it retried takes it out of the
        measurements (its rows leave the results once the new trial has its own) and
        the configuration is queued again.
        """
        configs: list[SpecConfig] = []
        retried = set(retried_trials(self.study))
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            if not is_measurement(trial, frozenset(retried)):
                continue
            config = trial_config(trial)
            if config is None:
                continue
            retried.add(trial.number)
            if config not in configs:
                configs.append(config)
        if configs:
            self.study.set_user_attr(STUDY_RETRIED, sorted(retried))
            self.enqueue(Enqueued(c, SOURCE_RETRY) for c in configs)
        return configs

    # -- proposing ---------------------------------------------------------------
    def _suggest(self, trial: Trial) -> tuple[int, int, int]:
        (s_lo, s_hi), (n_lo, n_hi) = self._bounds
        try:
            steps = trial.suggest_int("num_steps", s_lo, s_hi)
            topk = trial.suggest_categorical("topk", TOPK_DISTRIBUTION)
            ndt = trial.suggest_int("num_draft_tokens", n_lo, n_hi, log=True)
        except ValueError as exc:
            raise BadInputError(
                f"the study's search space does not match this run ({exc}); "
                "use a new --out or --study-name"
            ) from None
        return int(steps), int(topk), int(ndt)

    def propose(self) -> Proposal | None:
        """The next configuration to measure, or None when the strategy has no more.

        Duplicates are resolved here: a proposal whose configuration is already
        measured completes at once with the earlier value (or fails like it did), and
        one that another worker is measuring right now is pruned.
        """
        streak = 0
        replays = self._strategy.replays_queue
        for _ in range(MAX_ASKS_PER_MEASUREMENT):
            if replays and self.waiting() == 0:
                return None
            if not replays and self.exhausted():
                return None
            trial = self.study.ask()
            self.asks += 1
            trial.set_user_attr(ATTR_WORKER, self.worker)
            source = trial.user_attrs.get(ATTR_SOURCE)
            if source is None and replays:
                # Another worker popped the last queued trial between our check and ask.
                trial.set_user_attr(ATTR_SKIPPED, "queue empty")
                self.study.tell(trial, state=TrialState.PRUNED)
                return None
            sampled = self._suggest(trial)
            queued = trial.user_attrs.get(ATTR_QUEUED)
            if replays and isinstance(queued, Mapping):
                # The enqueued configuration whole: its method and the method's own
                # parameters are no Optuna dimension of a replayed list.
                config = SpecConfig.from_fields(queued)
            elif replays:
                config = SpecConfig(*sampled)  # an enqueued configuration, valid as built
            elif streak < REUSE_PATIENCE:
                config = self.space.nearest(*sampled)
            else:
                # The sampler keeps landing on measured configurations (it has converged,
                # or projection funnels its region into one point): measure the closest
                # configuration nobody has measured yet instead of stopping early.
                taken = set(self.measurements()) | {
                    str(t.user_attrs[ATTR_CONFIG]) for t in self.in_flight()
                }
                config = self.space.nearest(*sampled, exclude=taken)
            source = str(source or self.sampler_name)
            trial.set_user_attr(ATTR_SOURCE, source)
            trial.set_user_attr(ATTR_CONFIG, config.key)
            trial.set_user_attr(ATTR_CONFIG_FIELDS, config_fields(config))
            if self._others_active():
                # Let a concurrent worker's claim of the same configuration land first:
                # a lower-numbered trial was asked earlier, so after the settle its
                # config_key is visible and this (higher-numbered) trial yields to it.
                time.sleep(CLAIM_SETTLE_S)
            earlier = self.measurements().get(config.key)
            if earlier is not None:
                self._reuse(trial, earlier)
                streak += 1
                continue
            rivals = [
                t
                for t in self.in_flight()
                if t.user_attrs.get(ATTR_CONFIG) == config.key and t.number < trial.number
            ]
            if rivals:
                trial.set_user_attr(ATTR_SKIPPED, f"measured by trial {rivals[0].number}")
                self.study.tell(trial, state=TrialState.PRUNED)
                continue
            return Proposal(trial=trial, config=config, source=source, sampled=sampled)
        return None

    def _others_active(self) -> bool:
        """Whether another live worker is measuring in this study now or was lately.

        A stopped worker (typically the interrupted run this one resumes) is no rival:
        counting it would slow every proposal of a resume by the claim settle time.
        """
        recent = datetime.now() - OTHERS_RECENT
        gone: dict[str, bool] = {}
        for t in self.study.get_trials(deepcopy=False):
            worker = t.user_attrs.get(ATTR_WORKER)
            if not worker or worker == self.worker:
                continue
            active = t.state == TrialState.RUNNING or (
                t.datetime_complete is not None and t.datetime_complete > recent
            )
            if not active:
                continue
            key = str(worker)
            if key not in gone:
                gone[key] = worker_gone(key)
            if not gone[key]:
                return True
        return False

    def _reuse(self, trial: Trial, earlier: FrozenTrial) -> None:
        self.reused += 1
        trial.set_user_attr(ATTR_REUSED, earlier.number)
        measured = earlier.state == TrialState.COMPLETE or ATTR_PRUNED in earlier.user_attrs
        if measured and earlier.value is not None:
            self.study.tell(trial, earlier.value)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    # -- finishing -----------------------------------------------------------------
    def complete(self, proposal: Proposal, value: float, rows: Sequence[dict[str, Any]]) -> None:
        proposal.trial.set_user_attr(ATTR_ROWS, [dict(r) for r in rows])
        self.study.tell(proposal.trial, value)

    def prune(
        self, proposal: Proposal, value: float, rows: Sequence[dict[str, Any]], reason: str
    ) -> None:
        """Stop a trial after its first load, Optuna-style: the objective (the first
        load's value) is reported as step 0 and the trial told PRUNED, which keeps that
        value as the trial's (optuna/study/_tell.py) for the sampler to learn from."""
        trial = proposal.trial
        trial.set_user_attr(ATTR_ROWS, [dict(r) for r in rows])
        trial.set_user_attr(ATTR_PRUNED, reason)
        trial.report(value, step=0)
        self.study.tell(trial, state=TrialState.PRUNED)

    def fail(
        self,
        proposal: Proposal,
        error: str,
        *,
        rows: Sequence[dict[str, Any]] = (),
        log_tail: str = "",
        interrupted: bool = False,
    ) -> None:
        trial = proposal.trial
        trial.set_user_attr(ATTR_ERROR, error)
        if log_tail:
            trial.set_user_attr(ATTR_LOG_TAIL, log_tail)
        if interrupted:
            trial.set_user_attr(ATTR_INTERRUPTED, True)
        else:
            trial.set_user_attr(ATTR_ROWS, [dict(r) for r in rows])
        self.study.tell(trial, state=TrialState.FAIL)


__all__ = [
    "ATTR_CONFIG",
    "ATTR_CONFIG_FIELDS",
    "ATTR_LOG_TAIL",
    "ATTR_PRUNED",
    "ATTR_REUSED",
    "ATTR_ROWS",
    "ATTR_SKIPPED",
    "ATTR_SOURCE",
    "ATTR_WORKER",
    "SAMPLERS",
    "SOURCE_AUTO",
    "SOURCE_CARD",
    "SOURCE_PRIOR",
    "SOURCE_RETRY",
    "STRATEGIES",
    "STUDY_RETRIED",
    "ConfigSearch",
    "Enqueued",
    "Proposal",
    "config_fields",
    "is_measurement",
    "make_sampler",
    "retried_trials",
    "trial_config",
]
