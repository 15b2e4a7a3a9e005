"""Adaptive speculation at run time: which chain length each decode step runs.

An ``AdaptiveSpec`` is an adaptive config as an engine reads it (checked by that
engine's rules in ``adaptive_config``); its ``controller()`` is the per-server state that
picks the chain length of every step from the running batch size, as the engine does:

- SGLang (adaptive_spec_params.py, AdaptiveStepSlot and AdaptiveSpeculativeParams): a
  batch goes to the tier with the largest batch-size key not above it (the first tier
  below every key); each tier moves among its candidate steps by an exponential average
  of the drafts accepted per verify: after ``warmup_batches`` batches and then every
  ``update_interval``, down while the average is at or below the next lower step less
  0.5 (0.5 for step 0) plus ``down_hysteresis``, else up while it is above the current
  step less 0.5 plus ``up_hysteresis``; from step 0 it probes the next step up. A
  tier starts at the launch's num_steps when that is one of its candidates, else at
  the middle one.
- vLLM (num_speculative_tokens_per_batch_size): the k of the range holding the batch
  size (a gap takes the range before it, beyond the last the last), at most
  num_speculative_tokens; no run-time choice.

The simulator (``SimEngine``) and serve-sim run these, so a SIMULATED sweep measures an
adaptive config the way the engine would serve it. CUDA-graph padding of the batch size
before routing is not modelled (the simulator has no graphs).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from specbench.harness.adaptive_config import (
    SGLANG_ADAPTIVE,
    VLLM_ADAPTIVE,
    VLLM_TABLE_KEY,
    AdaptiveFormat,
)
from specbench.spec_config import SpecConfig

#: AdaptiveStepSlot's defaults for the settings a tier may leave out.
SLOT_DEFAULTS: dict[str, float] = {
    "ema_alpha": 0.2,
    "update_interval": 5,
    "warmup_batches": 10,
    "down_hysteresis": -0.25,
    "up_hysteresis": 0.0,
}


def chain(steps: int) -> SpecConfig | None:
    """The topk-1 chain of ``steps`` drafts (None: no speculation)."""
    return SpecConfig(steps, 1, steps + 1) if steps > 0 else None


class StepController(Protocol):
    """One server's adaptive state."""

    def config_for(self, batch: int) -> SpecConfig | None:
        """The chain this step runs at ``batch`` running requests (None: no drafts)."""

    def observe(self, batch: int, accepted_drafts: Sequence[float]) -> None:
        """Feed one verify step's accepted drafts per request."""

    def state(self) -> dict[str, Any]:
        """What the server reports about its live tiers (/server_info)."""


@dataclass
class _Slot:
    """One SGLang tier: its candidate steps and the acceptance average that moves it."""

    candidates: list[int]
    settings: dict[str, float]
    current: int
    ema: float
    batches: int = 0

    def update(self, accepted: Sequence[float]) -> None:
        if not accepted:
            return
        alpha = self.settings["ema_alpha"]
        if self.current > 0:
            self.ema = (1 - alpha) * self.ema + alpha * (sum(accepted) / len(accepted))
        self.batches += 1
        warmup, interval = (
            int(self.settings["warmup_batches"]),
            int(self.settings["update_interval"]),
        )
        if self.batches <= warmup or (self.batches - warmup) % max(interval, 1):
            return
        self._move()

    def _move(self) -> None:
        index = self.candidates.index(self.current)
        if self.current == 0:
            index = min(index + 1, len(self.candidates) - 1)
            target = self.candidates[index]
            if target > 0 and self.ema < 0:
                self.ema = float(target - 1)
            self.current = target
            return
        start = index
        while index > 0:
            lower = self.candidates[index - 1]
            threshold = (0.5 if lower == 0 else lower - 0.5) + self.settings["down_hysteresis"]
            if self.ema > threshold:
                break
            index -= 1
        if index == start:
            while index < len(self.candidates) - 1:
                rise = self.candidates[index] - 0.5 + self.settings["up_hysteresis"]
                if self.ema <= rise:
                    break
                index += 1
        self.current = self.candidates[index]


@dataclass
class SglangController:
    """SGLang's per-tier EMA step choice."""

    slots: dict[int, _Slot]
    keys: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = sorted(self.slots)

    def _slot(self, batch: int) -> _Slot:
        index = bisect.bisect_right(self.keys, batch) - 1
        return self.slots[self.keys[max(index, 0)]]

    def config_for(self, batch: int) -> SpecConfig | None:
        return chain(self._slot(batch).current)

    def observe(self, batch: int, accepted_drafts: Sequence[float]) -> None:
        self._slot(batch).update(accepted_drafts)

    def state(self) -> dict[str, Any]:
        return {str(k): {"current_steps": s.current, "ema": s.ema} for k, s in self.slots.items()}


@dataclass
class VllmController:
    """vLLM's fixed k per batch-size range."""

    ranges: list[tuple[int, int, int]]
    k_max: int

    def steps_at(self, batch: int) -> int:
        steps = self.ranges[0][2]
        for start, _, k in self.ranges:
            if start > batch:
                break
            steps = k
        return min(steps, self.k_max)

    def config_for(self, batch: int) -> SpecConfig | None:
        return chain(self.steps_at(batch))

    def observe(self, batch: int, accepted_drafts: Sequence[float]) -> None:
        """A table does not learn."""

    def state(self) -> dict[str, Any]:
        return {"ranges": [list(r) for r in self.ranges]}


@dataclass(frozen=True)
class AdaptiveSpec:
    """An adaptive config as one engine reads it: SGLang's tiers with their candidate
    steps (and the launch's num_steps they start at), or vLLM's table."""

    name: str
    format: AdaptiveFormat
    body: Mapping[str, Any]
    initial_steps: int = 0

    @classmethod
    def sglang(cls, body: Mapping[str, Any], *, initial_steps: int, name: str) -> AdaptiveSpec:
        """SGLang's file; BadInputError (one line) when SGLang would refuse it."""
        SGLANG_ADAPTIVE.check(body, name)
        return cls(name, SGLANG_ADAPTIVE, dict(body), initial_steps)

    @classmethod
    def vllm(cls, body: Mapping[str, Any], *, name: str) -> AdaptiveSpec:
        """vLLM's --speculative-config with its table; BadInputError when refused."""
        VLLM_ADAPTIVE.check(body, name)
        return cls(name, VLLM_ADAPTIVE, dict(body))

    @classmethod
    def of(
        cls, fmt: AdaptiveFormat, body: Mapping[str, Any], *, initial_steps: int, name: str
    ) -> AdaptiveSpec:
        """``body`` in ``fmt``'s format, checked by its rules."""
        fmt.check(body, name)
        return cls(name, fmt, dict(body), initial_steps)

    @property
    def launch_config(self) -> SpecConfig:
        """The chain its server is launched with: SGLang's starting num_steps (its slots
        start there), vLLM's num_speculative_tokens (the k every range is capped at)."""
        steps = self.initial_steps if self.format.chooses_at_run_time else self.longest
        return SpecConfig(max(steps, 1), 1, max(steps, 1) + 1)

    @property
    def longest(self) -> int:
        """The longest chain it can run (what the server is sized for)."""
        if not self.format.chooses_at_run_time:
            return int(self.body["num_speculative_tokens"])
        return max(
            int(s) for k, v in self.body.items() if k.isdigit() for s in v["candidate_steps"]
        )

    def settled_config(
        self, batch: int, expected_accepted: Callable[[SpecConfig], float], steps: int = 400
    ) -> SpecConfig | None:
        """The chain the engine settles on at a steady ``batch`` when each verify
        accepts ``expected_accepted(chain)`` drafts on average (the model's tau - 1): the
        controller run on that expectation until its choice stops moving. A table needs
        no run; SGLang's average reaches its fixed point within a few update intervals."""
        controller = self.controller()
        for _ in range(steps):
            config = controller.config_for(batch)
            accepted = 0.0 if config is None else expected_accepted(config)
            controller.observe(batch, [accepted] * batch)
        return controller.config_for(batch)

    def controller(self) -> StepController:
        """Fresh run-time state (one per server)."""
        if not self.format.chooses_at_run_time:
            ranges = sorted(tuple(int(v) for v in r) for r in self.body[VLLM_TABLE_KEY])
            return VllmController([(a, b, c) for a, b, c in ranges], self.longest)
        shared = {k: float(v) for k, v in self.body.items() if k in SLOT_DEFAULTS}
        slots: dict[int, _Slot] = {}
        for key, entry in self.body.items():
            if not key.isdigit():
                continue
            settings = {**SLOT_DEFAULTS, **shared}
            settings.update({k: float(v) for k, v in entry.items() if k in SLOT_DEFAULTS})
            candidates = sorted(set(entry["candidate_steps"]))
            start = (
                self.initial_steps
                if self.initial_steps in candidates
                else candidates[len(candidates) // 2]
            )
            slots[int(key)] = _Slot(candidates, settings, start, float(start - 1))
        return SglangController(slots)


__all__ = ["AdaptiveSpec", "SglangController", "StepController", "VllmController", "chain"]
