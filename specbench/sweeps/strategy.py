"""Search strategies as objects: what each enqueues, how it samples, when it is done.

A sweep has one strategy, resolved from ``--strategy`` once (``search_strategy``); the
search, the set-up and the results ask it instead of comparing its name. Every strategy
runs through one Optuna study (see sweeps.search), so they differ only in these answers:

- ``optuna``: the model's best guesses, the card and SGLang's auto default first, then a
  sampler (TPE or GP) proposes; sampled points are projected onto the valid space.
- ``grid``: every configuration of the space, enqueued and replayed in order.
- ``fixed``: the ``--config`` values (or an attached server's own configuration), replayed.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from specbench.errors import BadInputError
from specbench.spec_config import NUM_STEPS_RANGE, SpecConfig
from specbench.sweeps.space import SearchSpace

if TYPE_CHECKING:  # optuna loads with the sampler, so `sweep -h` can list the strategies
    import optuna

SAMPLERS: tuple[str, ...] = ("tpe", "gp")
#: Draft-token bounds of the Optuna distribution when the space does not set them.
NDT_BOUNDS = (2, 64)
#: Configurations the model-guided search measures when --trials is not given.
DEFAULT_TRIALS = 30

Bounds = tuple[tuple[int, int], tuple[int, int]]


@dataclass
class Enqueued:
    """A configuration queued for measurement, and why (its trial's source)."""

    config: SpecConfig
    source: str


#: The model's first guesses (prior top, card, auto), computed only if a strategy asks.
Guesses = Callable[[], list[Enqueued]]


class SearchStrategy(ABC):
    """One way of choosing the configurations a sweep measures."""

    #: The ``--strategy`` value, written to the manifest and results.json.
    name: str
    #: Whether it only pops the configurations it enqueued (no sampler proposals).
    replays_queue: bool = True
    #: Whether it measures exactly the ``--config`` values it is given.
    takes_configs: bool = False

    def sampler(
        self, sampler: str, *, seed: int, n_startup_trials: int
    ) -> optuna.samplers.BaseSampler:
        """The study's sampler. A replaying strategy never samples; its seed still makes
        a stray ask reproducible."""
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)

    def sampler_label(self, sampler: str) -> str | None:
        """The sampler named in the manifest and results (None: it never samples)."""
        return None

    def bounds(self, space: SearchSpace) -> Bounds:
        """(num_steps, num_draft_tokens) bounds of the Optuna distributions. Replaying
        strategies take the widest, so a configuration outside any earlier --space fits."""
        return (min(NUM_STEPS_RANGE), max(NUM_STEPS_RANGE)), NDT_BOUNDS

    @abstractmethod
    def planned(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> int:
        """Configurations it measures without --trials."""

    def target_trials(
        self, space: SearchSpace, configs: Sequence[SpecConfig], trials: int | None
    ) -> int:
        """Configurations it measures in all: --trials caps a replayed list."""
        wanted = self.planned(space, configs)
        return wanted if trials is None else min(trials, wanted)

    @abstractmethod
    def describe(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> str:
        """What it measures, for the banner."""

    @abstractmethod
    def first(
        self, space: SearchSpace, configs: Sequence[SpecConfig], guesses: Guesses
    ) -> list[Enqueued]:
        """What it enqueues before the first proposal, in measuring order."""


class ModelGuided(SearchStrategy):
    """The performance model's picks, then TPE or GP (``--strategy optuna``)."""

    name = "optuna"
    replays_queue = False

    def sampler(
        self, sampler: str, *, seed: int, n_startup_trials: int
    ) -> optuna.samplers.BaseSampler:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings are not for users
            if sampler == "tpe":
                return optuna.samplers.TPESampler(
                    seed=seed,
                    n_startup_trials=n_startup_trials,
                    multivariate=True,
                    constant_liar=True,  # parallel workers spread out instead of colliding
                )
            if sampler == "gp":
                return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
        raise BadInputError(f"unknown sampler {sampler!r} (expected {', '.join(SAMPLERS)})")

    def sampler_label(self, sampler: str) -> str | None:
        return sampler

    def bounds(self, space: SearchSpace) -> Bounds:
        steps = (min(space.num_steps), max(space.num_steps))
        ndt = (min(space.num_draft_tokens), max(space.num_draft_tokens))
        return steps, ndt

    def planned(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> int:
        return min(DEFAULT_TRIALS, len(space))

    def target_trials(
        self, space: SearchSpace, configs: Sequence[SpecConfig], trials: int | None
    ) -> int:
        """--trials may ask for more than the default, up to the whole space."""
        return self.planned(space, configs) if trials is None else min(trials, len(space))

    def describe(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> str:
        return f"strategy {self.name} over {len(space)} valid configurations"

    def first(
        self, space: SearchSpace, configs: Sequence[SpecConfig], guesses: Guesses
    ) -> list[Enqueued]:
        return guesses()


class Grid(SearchStrategy):
    """Every configuration of the space, in order (``--strategy grid``)."""

    name = "grid"

    def planned(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> int:
        return len(space)

    def describe(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> str:
        return f"strategy {self.name} over {len(space)} valid configurations"

    def first(
        self, space: SearchSpace, configs: Sequence[SpecConfig], guesses: Guesses
    ) -> list[Enqueued]:
        return [Enqueued(c, self.name) for c in space.configs]


class Fixed(SearchStrategy):
    """The given configurations only (``--strategy fixed``, and every --endpoint run)."""

    name = "fixed"
    takes_configs = True

    def planned(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> int:
        return len({c.key for c in configs})

    def describe(self, space: SearchSpace, configs: Sequence[SpecConfig]) -> str:
        n = self.planned(space, configs)
        return f"{n} fixed configuration{'s' if n != 1 else ''}"

    def first(
        self, space: SearchSpace, configs: Sequence[SpecConfig], guesses: Guesses
    ) -> list[Enqueued]:
        return [Enqueued(c, self.name) for c in configs]


#: Every strategy by its ``--strategy`` name, in the order the help lists them.
_STRATEGIES: dict[str, SearchStrategy] = {s.name: s for s in (ModelGuided(), Grid(), Fixed())}
STRATEGIES: tuple[str, ...] = tuple(_STRATEGIES)


def search_strategy(name: str | SearchStrategy) -> SearchStrategy:
    """The strategy ``--strategy`` names (a ready one is returned as it is)."""
    if isinstance(name, SearchStrategy):
        return name
    found = _STRATEGIES.get(name)
    if found is None:
        raise BadInputError(f"unknown --strategy {name!r} (expected {', '.join(STRATEGIES)})")
    return found


__all__ = [
    "DEFAULT_TRIALS",
    "SAMPLERS",
    "STRATEGIES",
    "Enqueued",
    "Fixed",
    "Grid",
    "Guesses",
    "ModelGuided",
    "SearchStrategy",
    "search_strategy",
]
