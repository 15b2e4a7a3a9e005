"""A fallback interval for a speedup, from the per-request records of a run.

Runs measured before trials.csv carried ``speedup_ci_low``/``speedup_ci_high`` still
keep every request in requests.jsonl, which is enough for a bootstrap: resample the
prompts (paired, since baseline and speculative servers replay the same prompts at the
same concurrency), recompute the ratio of decode rates, and scale the run's own speedup
by the spread of that ratio. Scaling keeps the interval centred on the speedup the
sweep reported (aggregate tokens/s), while its width comes from the prompt-to-prompt
spread the per-request data shows (Efron & Tibshirani 1993, percentile bootstrap).

This is the one function to swap when the measurement itself records an interval.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from specbench.spec_config import BASELINE_KEY

#: Bootstrap resamples: 1000 keeps the 2.5/97.5 percentiles stable to ~0.5%.
RESAMPLES = 1000
LEVEL = 0.95
#: Fewer paired prompts than this say little about spread: no interval.
MIN_PAIRS = 4


class RequestLike(Protocol):
    """The fields of a request record the bootstrap reads."""

    @property
    def prompt_id(self) -> str: ...
    @property
    def config_key(self) -> str: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def e2e_ms(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


@dataclass
class _Samples:
    tokens: dict[str, float]
    ms: dict[str, float]


class RequestBootstrap:
    """Intervals for (config, concurrency) from requests.jsonl, computed on demand."""

    source = "requests"

    def __init__(
        self, records: Iterable[RequestLike], *, resamples: int = RESAMPLES, seed: int = 0
    ) -> None:
        self._samples: dict[tuple[str, int], _Samples] = {}
        for r in records:
            if r.error is not None or r.e2e_ms is None or r.e2e_ms <= 0:
                continue
            s = self._samples.setdefault((r.config_key, int(r.concurrency)), _Samples({}, {}))
            # A prompt replayed twice in one trial (repeats) adds up: it is one pair.
            s.tokens[r.prompt_id] = s.tokens.get(r.prompt_id, 0.0) + float(r.completion_tokens)
            s.ms[r.prompt_id] = s.ms.get(r.prompt_id, 0.0) + float(r.e2e_ms)
        self._resamples = resamples
        self._seed = seed
        self._cache: dict[tuple[str, int], tuple[float, float] | None] = {}

    def relative(self, config_key: str, concurrency: int) -> tuple[float, float] | None:
        """(low, high) of the resampled rate ratio over the observed one."""
        key = (config_key, int(concurrency))
        if key not in self._cache:
            self._cache[key] = self._compute(*key)
        return self._cache[key]

    def __call__(
        self, config_key: str, concurrency: int, speedup: float
    ) -> tuple[float, float, str] | None:
        """An IntervalSource: the speedup scaled by the relative interval."""
        rel = self.relative(config_key, concurrency)
        if rel is None:
            return None
        return speedup * rel[0], speedup * rel[1], self.source

    def _compute(self, config_key: str, concurrency: int) -> tuple[float, float] | None:
        spec = self._samples.get((config_key, concurrency))
        base = self._samples.get((BASELINE_KEY, concurrency))
        if spec is None or base is None:
            return None
        prompts = sorted(set(spec.tokens) & set(base.tokens))
        if len(prompts) < MIN_PAIRS:
            return None
        st = np.array([spec.tokens[p] for p in prompts])
        sm = np.array([spec.ms[p] for p in prompts])
        bt = np.array([base.tokens[p] for p in prompts])
        bm = np.array([base.ms[p] for p in prompts])
        observed = (st.sum() / sm.sum()) / (bt.sum() / bm.sum())
        if not np.isfinite(observed) or observed <= 0:
            return None
        seed = zlib.crc32(f"{self._seed}:{config_key}:{concurrency}".encode())
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(prompts), size=(self._resamples, len(prompts)))
        ratios = (st[idx].sum(1) / sm[idx].sum(1)) / (bt[idx].sum(1) / bm[idx].sum(1))
        tail = (1.0 - LEVEL) / 2.0 * 100.0
        low, high = np.percentile(ratios, [tail, 100.0 - tail])
        return float(low / observed), float(high / observed)


__all__ = ["LEVEL", "MIN_PAIRS", "RESAMPLES", "RequestBootstrap", "RequestLike"]
