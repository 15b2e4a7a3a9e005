"""Load kinds a user can name: closed-loop concurrency and open-loop request rates.

``--load concurrency:1,8,32`` keeps c requests in flight (a new one starts when one
finishes: the batch size stays pinned, which is what speculation's benefit depends on).
``--load rate:0.5,2,8`` sends requests at a rate, whatever the server does with them,
as deployed servers see traffic (vllm bench serve's ``--request-rate``, guidellm's
constant and poisson profiles). Each kind is an object behind one small contract
(:class:`LoadKind`) so that the backends and the summaries ask a load what it is
instead of branching on a name.

Pairing: a rate load's send times depend only on (rate, arrival process, seed, number
of requests), never on the server, so the baseline and every speculative configuration
get the same prompts at the same offsets.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from specbench.errors import BadInputError
from specbench.limits import MAX_RATES, check_bound

if TYPE_CHECKING:
    from specbench.harness.prompts import Prompt


class Arrival(ABC):
    """How send times are spread at a given mean rate."""

    name: str

    @abstractmethod
    def offsets_s(self, count: int, rate_per_s: float, seed: int) -> list[float]:
        """``count`` send times (seconds after the load starts), non-decreasing, first at 0."""


class PoissonArrival(Arrival):
    """Exponential gaps of mean ``1 / rate``: independent users (vllm bench serve's
    default, burstiness 1). Seeded, so every configuration sees the same draws."""

    name = "poisson"

    def offsets_s(self, count: int, rate_per_s: float, seed: int) -> list[float]:
        if count <= 0:
            return []
        rng = np.random.default_rng(seed)
        gaps = rng.exponential(1.0 / rate_per_s, size=count - 1)
        return [0.0, *np.cumsum(gaps).tolist()]


class ConstantArrival(Arrival):
    """One request every ``1 / rate`` seconds (guidellm's constant profile)."""

    name = "constant"

    def offsets_s(self, count: int, rate_per_s: float, seed: int) -> list[float]:
        return [i / rate_per_s for i in range(max(0, count))]


ARRIVALS: dict[str, Arrival] = {a.name: a for a in (PoissonArrival(), ConstantArrival())}


def arrival_named(name: str) -> Arrival:
    """The arrival process called ``name``; one BadInputError line for anything else."""
    try:
        return ARRIVALS[name]
    except KeyError:
        raise BadInputError(
            f"--arrival must be one of {', '.join(sorted(ARRIVALS))} (got {name!r})"
        ) from None


class LoadKind(ABC):
    """One load: what it is called, whether it is open loop, and when requests go out."""

    @property
    @abstractmethod
    def label(self) -> str:
        """How the console and the report name the load ("c=8", "2 req/s")."""

    @property
    @abstractmethod
    def max_in_flight(self) -> int | None:
        """Requests the client keeps in flight at most; None: no cap."""

    @abstractmethod
    def send_offsets_s(self, count: int) -> list[float] | None:
        """When each of ``count`` requests is sent (s after the load starts), or None
        for a closed loop (each request is sent when another one finishes)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The load as results.json stores it (names carry units)."""


@dataclass(frozen=True)
class ConcurrencyLoad(LoadKind):
    """``concurrency`` requests in flight at all times (today's ``--concurrency``)."""

    concurrency: int

    @property
    def label(self) -> str:
        return f"c={self.concurrency}"

    @property
    def max_in_flight(self) -> int:
        return self.concurrency

    def send_offsets_s(self, count: int) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "concurrency", "concurrency": self.concurrency}


@dataclass(frozen=True)
class RateLoad(LoadKind):
    """Requests sent at ``rate_per_s`` on average, whatever the server answers.

    ``max_concurrency`` caps the requests in flight as vllm bench serve's
    ``--max-concurrency`` does: a request due while the cap is reached waits in the
    client, and that wait is part of what the load measures.
    """

    rate_per_s: float
    arrival: Arrival
    seed: int = 0
    max_concurrency: int | None = None

    @property
    def label(self) -> str:
        return f"{self.rate_per_s:g} req/s"

    @property
    def max_in_flight(self) -> int | None:
        return self.max_concurrency

    def send_offsets_s(self, count: int) -> list[float]:
        return self.arrival.offsets_s(count, self.rate_per_s, self.seed)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "rate",
            "rate_per_s": self.rate_per_s,
            "arrival": self.arrival.name,
            "seed": self.seed,
        }
        if self.max_concurrency is not None:
            out["max_concurrency"] = self.max_concurrency
        return out


@dataclass(frozen=True)
class RampLoad(LoadKind):
    """``ramp:1,8,32,8,1``: phases of closed-loop load at each concurrency in turn, on
    one server, so that what a server carries from one load to the next (an adaptive
    engine's learned chain length, its caches) is part of what is measured. Each phase
    sends at least twice its concurrency of requests, so its batch reaches that size."""

    phases: tuple[int, ...]

    @property
    def label(self) -> str:
        return "ramp " + "-".join(str(c) for c in self.phases)

    @property
    def max_in_flight(self) -> int:
        return max(self.phases)

    def send_offsets_s(self, count: int) -> None:
        return None

    def requests_in_phase(self, concurrency: int, num_prompts: int) -> int:
        """Requests a phase at ``concurrency`` sends: every prompt, and 2 x concurrency."""
        return max(num_prompts, 2 * concurrency)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "ramp", "phases": list(self.phases)}


@dataclass(frozen=True)
class RateSweepPlan:
    """``--load sweep``: find the baseline's saturation rate, then ``count`` rates up to it
    (guidellm's sweep profile: a throughput run first, then evenly spaced rates)."""

    count: int
    arrival: Arrival
    seed: int = 0
    max_concurrency: int | None = None

    def loads_up_to(self, saturation_per_s: float) -> list[RateLoad]:
        """``count`` rate loads evenly spaced in (0, saturation], the last one at it."""
        check_bound("--load rate", saturation_per_s)
        step = saturation_per_s / self.count
        return [
            RateLoad(step * (i + 1), self.arrival, self.seed, self.max_concurrency)
            for i in range(self.count)
        ]


#: Rates a ``--load sweep`` measures up to the saturation rate (guidellm's default is 10).
DEFAULT_SWEEP_RATES = 10


@dataclass(frozen=True)
class RateRun:
    """One rate load as a session runs it: the measured requests' prompts in issue order
    (the same list for the baseline and every configuration, so the comparison is
    paired), and a short closed-loop warm-up run first and discarded."""

    load: RateLoad
    prompts: Sequence[Prompt]
    max_new_tokens: int
    request_timeout_s: float
    warmup_prompts: Sequence[Prompt] = ()
    warmup_tokens: int = 16
    #: OpenAI-style engines: every prompt through the chat API.
    chat_template: bool = False

    def __post_init__(self) -> None:
        if not self.prompts:
            raise BadInputError("the rate load has no prompts")

    @property
    def due_s(self) -> list[float]:
        """When each measured request is due, seconds after the load starts."""
        return self.load.send_offsets_s(len(self.prompts))


def _numbers(kind: str, text: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise BadInputError(
            f"--load {kind}: needs a comma-separated list of numbers (got {text!r})"
        )
    if len(parts) > MAX_RATES:
        raise BadInputError(f"--load {kind}: at most {MAX_RATES} values (got {len(parts)})")
    values: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise BadInputError(f"--load {kind}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise BadInputError(f"--load {kind}: {part!r} is not a finite number")
        values.append(value)
    return values


def parse_load(
    text: str,
    *,
    arrival: str = "poisson",
    seed: int = 0,
    max_concurrency: int | None = None,
) -> list[LoadKind] | RateSweepPlan:
    """``concurrency:1,8``, ``rate:0.5,2`` or ``sweep[:N]``; one BadInputError line otherwise."""
    check_bound("--max-concurrency", max_concurrency)
    process = arrival_named(arrival)
    kind, _, rest = text.strip().partition(":")
    if kind == "concurrency":
        levels: list[LoadKind] = []
        for value in _numbers(kind, rest):
            if not value.is_integer():
                raise BadInputError(f"--load concurrency: {value:g} is not a whole number")
            check_bound("--concurrency", value)
            levels.append(ConcurrencyLoad(int(value)))
        return levels
    if kind == "rate":
        rates: list[LoadKind] = []
        for value in _numbers(kind, rest):
            check_bound("--load rate", value)
            rates.append(RateLoad(value, process, seed, max_concurrency))
        return rates
    if kind == "ramp":
        phases: list[int] = []
        for value in _numbers(kind, rest):
            if not value.is_integer():
                raise BadInputError(f"--load ramp: {value:g} is not a whole number")
            check_bound("--concurrency", value)
            phases.append(int(value))
        if len(phases) < 2:
            raise BadInputError("--load ramp: needs at least two phases, e.g. ramp:1,8,32,8,1")
        return [RampLoad(tuple(phases))]
    if kind == "sweep":
        count = DEFAULT_SWEEP_RATES
        if rest:
            (value,) = _numbers(kind, rest)[:1]
            check_bound("--sweep-rates", value)
            count = int(value)
        return RateSweepPlan(count, process, seed, max_concurrency)
    raise BadInputError(
        "--load must be concurrency:N[,N...], rate:R[,R...], sweep[:N] or ramp:C,C[,C...] "
        f"(got {text!r})"
    )


__all__ = [
    "ARRIVALS",
    "DEFAULT_SWEEP_RATES",
    "Arrival",
    "ConcurrencyLoad",
    "ConstantArrival",
    "LoadKind",
    "PoissonArrival",
    "RampLoad",
    "RateLoad",
    "RateRun",
    "RateSweepPlan",
    "arrival_named",
    "parse_load",
]
