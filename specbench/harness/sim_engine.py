"""A continuous-batching scheduler driven by the performance model.

Shared by the in-process SimBackend and ``specbench serve-sim`` so that a simulated sweep
and a sweep against the fake server see the same step times and acceptance draws. It
mirrors what SGLang's scheduler does at the level the model can speak to: new requests
are prefilled and emit their first token, then every running request advances by one
decode iteration per step. With speculation an iteration is one draft-and-verify round
that releases between 1 and ``num_steps + 1`` tokens; without it, exactly one token.

Simplifications (documented because they shape the numbers):

* every request runs to ``max_new_tokens`` (the harness sends ``ignore_eos``);
* a step that prefills new requests also decodes the running ones, and its duration is
  the sum of both, so running streams see the prefill as a longer gap, as they would
  with SGLang's separate prefill iterations;
* all waiting requests are prefilled together (no chunked-prefill budget), costed as
  ``batch`` prompts of their mean length: the loads the harness generates are
  closed-loop with a few hundred prompt tokens each.

Randomness: each request draws its accept lengths from its own generator seeded by
(seed, request id), all at admission, so a request's draws do not depend on which other
requests were running or in which order they arrived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from specbench.harness.adaptive_steps import AdaptiveSpec, StepController
from specbench.spec_config import SpecConfig


class EngineModel(Protocol):
    """The parts of specbench.model.PerformanceModel the engine uses.

    A Protocol (not an import) so the harness does not depend on how the model is built
    and tests can drive the engine with a small fake.
    """

    def decode_step_s(self, config: SpecConfig | None, batch: int, /) -> float: ...

    def prefill_s(self, prompt_tokens: int, batch: int = 1, /) -> float:
        """Prefill of ``batch`` requests of ``prompt_tokens`` tokens each."""
        ...

    def sample_accept_lengths(
        self, config: SpecConfig, domain: str, n: int, rng: np.random.Generator, /
    ) -> npt.NDArray[Any]: ...


@dataclass
class StepResult:
    """What one scheduler iteration did.

    ``tokens``: new tokens per request this step (every request that advanced);
    ``verify``: verify forwards per request this step (1 for each decoding request with
    speculation; empty for the baseline, which has no verify step);
    ``finished``: requests that reached max_new_tokens this step;
    ``prefilled``: requests whose prefill ran this step (their first token is in it).
    """

    duration_s: float
    tokens: dict[str, int] = field(default_factory=dict)
    verify: dict[str, int] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    prefilled: list[str] = field(default_factory=list)


class _Request:
    __slots__ = (
        "accepts",
        "adaptive_draws",
        "domain",
        "emitted",
        "max_new_tokens",
        "next_draw",
        "prompt_tokens",
        "rid",
        "verify_ct",
    )

    def __init__(
        self, rid: str, prompt_tokens: int, max_new_tokens: int, domain: str, accepts: list[int]
    ) -> None:
        self.rid = rid
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.domain = domain
        self.accepts = accepts
        #: Under adaptive speculation: accept lengths drawn per chain, and how many used.
        self.adaptive_draws: dict[SpecConfig, tuple[list[int], int]] = {}
        self.next_draw = 0
        self.emitted = 0
        self.verify_ct = 0


def request_seed(seed: int, request_id: str) -> np.random.SeedSequence:
    """The seed sequence of one request: stable across processes (no Python hash())."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFFFFFFFFFF, int.from_bytes(digest[:8], "little")]
    )


class SimEngine:
    """Continuous batching on a virtual clock; see the module docstring."""

    def __init__(
        self,
        model: EngineModel,
        config: SpecConfig | None,
        *,
        seed: int = 0,
        adaptive: AdaptiveSpec | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.seed = seed
        #: Adaptive speculation: the chain of each step follows the running batch size
        #: (``config`` is then only the launch's starting point).
        self.adaptive = adaptive
        self.controller: StepController | None = adaptive.controller() if adaptive else None
        self._pending: dict[str, _Request] = {}
        self._running: dict[str, _Request] = {}
        # Step times depend only on (config, batch) and prefill only on its inputs; the
        # model is deterministic, and caching keeps a 60 x 256-token run in milliseconds.
        self._decode_cache: dict[tuple[SpecConfig | None, int], float] = {}
        self._prefill_cache: dict[tuple[int, int], float] = {}
        self._now_s = 0.0

    # -- state ---------------------------------------------------------------
    @property
    def now_s(self) -> float:
        """Virtual time: the sum of every step's duration so far."""
        return self._now_s

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    @property
    def has_work(self) -> bool:
        return bool(self._pending or self._running)

    def emitted(self, request_id: str) -> int:
        """Tokens emitted so far by an admitted, unfinished request."""
        req = self._running.get(request_id) or self._pending.get(request_id)
        if req is None:
            raise KeyError(request_id)
        return req.emitted

    def idle_until(self, at_s: float) -> None:
        """Let the clock run to ``at_s`` with nothing to do (an open-loop load waiting
        for its next arrival); never backwards, and only while idle."""
        if self.has_work:
            raise ValueError("idle_until() while requests are admitted")
        self._now_s = max(self._now_s, at_s)

    # -- scheduling ----------------------------------------------------------
    def admit(self, request_id: str, prompt_tokens: int, max_new_tokens: int, domain: str) -> None:
        """Queue a request; it is prefilled on the next step()."""
        if request_id in self._pending or request_id in self._running:
            raise ValueError(f"request {request_id!r} is already admitted")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
        if prompt_tokens < 0:
            raise ValueError(f"prompt_tokens must be >= 0 (got {prompt_tokens})")
        accepts: list[int] = []
        if self.controller is None and self.config is not None and max_new_tokens > 1:
            # One draw per possible verify step: each accepts >= 1 token, and the first
            # token comes from the prefill, so max_new_tokens - 1 draws always suffice.
            rng = np.random.default_rng(request_seed(self.seed, request_id))
            draws = self.model.sample_accept_lengths(self.config, domain, max_new_tokens - 1, rng)
            accepts = [int(a) for a in np.asarray(draws).ravel()]
            if len(accepts) < max_new_tokens - 1:
                raise ValueError(
                    f"model returned {len(accepts)} accept lengths, asked for {max_new_tokens - 1}"
                )
        self._pending[request_id] = _Request(
            request_id, prompt_tokens, max_new_tokens, domain, accepts
        )

    def abort(self, request_id: str) -> bool:
        """Drop a request (client timeout or disconnect); True if it was still active."""
        return (
            self._pending.pop(request_id, None) is not None
            or self._running.pop(request_id, None) is not None
        )

    def step_config(self, batch: int) -> SpecConfig | None:
        """The chain a decode step of ``batch`` requests runs."""
        return self.controller.config_for(batch) if self.controller else self.config

    def decode_time_s(self, batch: int) -> float:
        """One decode step of ``batch`` requests, with the chain run at that size."""
        return self._decode_s(batch, self.step_config(batch))

    def _decode_s(self, batch: int, config: SpecConfig | None) -> float:
        duration = self._decode_cache.get((config, batch))
        if duration is None:
            duration = float(self.model.decode_step_s(config, batch))
            self._decode_cache[(config, batch)] = duration
        return duration

    def _accept_length(self, req: _Request, config: SpecConfig) -> int:
        """The next accept length of ``req`` under ``config``: the fixed draws, or under
        adaptive speculation a draw per chain (seeded by request and chain, so a rerun
        draws the same tokens)."""
        if self.controller is None:
            n = req.accepts[req.next_draw]
            req.next_draw += 1
            return n
        draws, used = req.adaptive_draws.get(config, ([], 0))
        if used >= len(draws):
            seed = request_seed(self.seed, f"{req.rid}|{config.key}")
            block = self.model.sample_accept_lengths(
                config, req.domain, max(1, req.max_new_tokens), np.random.default_rng(seed)
            )
            draws, used = [int(a) for a in np.asarray(block).ravel()], 0
        req.adaptive_draws[config] = (draws, used + 1)
        return draws[used]

    def prefill_time_s(self, prompt_tokens: int, batch: int) -> float:
        key = (prompt_tokens, batch)
        duration = self._prefill_cache.get(key)
        if duration is None:
            duration = float(self.model.prefill_s(prompt_tokens, batch))
            self._prefill_cache[key] = duration
        return duration

    def step(self) -> StepResult:
        """One scheduler iteration over every admitted, unfinished request.

        Returns a zero-duration result when there is nothing to do.
        """
        result = StepResult(duration_s=0.0)
        tokens = result.tokens
        finished = result.finished
        duration = 0.0

        if self._running:
            batch = len(self._running)
            config = self.step_config(batch)
            duration += self._decode_s(batch, config)
            verify = result.verify
            accepted: list[int] = []
            for rid, req in self._running.items():
                if config is not None:
                    n = self._accept_length(req, config)
                    accepted.append(max(n - 1, 0))
                    req.verify_ct += 1
                    verify[rid] = 1
                    remaining = req.max_new_tokens - req.emitted
                    if n > remaining:
                        n = remaining
                    elif n < 1:
                        n = 1
                else:
                    n = 1
                req.emitted += n
                tokens[rid] = n
                if req.emitted >= req.max_new_tokens:
                    finished.append(rid)
            if self.controller is not None:
                self.controller.observe(batch, accepted if config is not None else [0] * batch)

        if self._pending:
            prefill = list(self._pending.values())
            self._pending.clear()
            # The model's prefill_s takes tokens per request and the batch size.
            mean_tokens = round(sum(r.prompt_tokens for r in prefill) / len(prefill))
            duration += self.prefill_time_s(max(1, mean_tokens), len(prefill))
            for req in prefill:
                req.emitted = 1
                tokens[req.rid] = 1
                result.prefilled.append(req.rid)
                if req.max_new_tokens <= 1:
                    finished.append(req.rid)
                else:
                    self._running[req.rid] = req

        for rid in finished:
            self._running.pop(rid, None)
        result.duration_s = duration
        self._now_s += duration
        return result


__all__ = ["EngineModel", "SimEngine", "StepResult", "request_seed"]
