"""The performance model: acceptance Monte-Carlo + cost model -> tau, step time, speedup.

Everything it returns is SIMULATED: a prediction from published architecture figures,
datasheets and calibration anchors, never a measurement. The sim backend serves these
numbers, the sweep seeds its search with them, and reports show them next to measured
ones, always labelled.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri

from specbench.errors import InvalidConfigError
from specbench.model.acceptance import (
    MAX_STEPS,
    MAX_TOPK,
    DomainAcceptance,
    simulate_need,
    tau_from_need,
)
from specbench.model.cost import CostModel, CostScales
from specbench.model.engines import EngineProfile, load_engine
from specbench.model.hardware import HardwareProfile
from specbench.model.memory import MemoryFit, memory_fit
from specbench.model.targets import DOMAINS, TargetPreset
from specbench.model.workload import Workload
from specbench.spec_config import SpecConfig, config_key

DEFAULT_SAMPLES = 2000
#: num_draft_tokens values precomputed per (num_steps, topk): the whole search space.
_NDT_MAX = 64


@dataclass(frozen=True)
class Prediction:
    config: SpecConfig | None
    concurrency: int
    tau: float
    speedup: float
    step_time_ms: float
    baseline_step_time_ms: float
    tokens_per_s: float
    baseline_tokens_per_s: float
    simulated: bool = True

    def as_row(self) -> dict[str, object]:
        c = self.config
        return {
            "config": config_key(c),
            "num_steps": None if c is None else c.num_steps,
            "topk": None if c is None else c.topk,
            "num_draft_tokens": None if c is None else c.num_draft_tokens,
            "concurrency": self.concurrency,
            "tau": self.tau,
            "speedup": self.speedup,
            "step_time_ms": self.step_time_ms,
            "baseline_step_time_ms": self.baseline_step_time_ms,
            "tokens_per_s": self.tokens_per_s,
            "baseline_tokens_per_s": self.baseline_tokens_per_s,
            "simulated": self.simulated,
        }


class PerformanceModel:
    """Predicts tau and speedup of a target on a hardware profile (SIMULATED)."""

    def __init__(
        self,
        target: TargetPreset,
        hardware: HardwareProfile,
        *,
        seed: int = 0,
        samples: int = DEFAULT_SAMPLES,
        cost_scales: CostScales | None = None,
        engine: EngineProfile | None = None,
        workload: Workload | None = None,
        draft_tp: int | None = None,
    ) -> None:
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.target = target
        self.hardware = hardware
        self.seed = seed
        self.samples = samples
        self.engine = engine or load_engine()
        self.workload = workload or Workload()
        self.cost = CostModel(
            target,
            hardware,
            cost_scales,
            engine=self.engine,
            context_tokens=self.workload.context_tokens(target.overheads.context_tokens),
            draft_tp=draft_tp,
        )
        self._need: dict[tuple[str, int], np.ndarray] = {}
        self._mean_tau: dict[tuple[str, int], np.ndarray] = {}
        self._tau_samples: dict[tuple[SpecConfig, str | None], np.ndarray] = {}

    # -- acceptance ---------------------------------------------------------------
    def _domains(self, domain: str | None) -> tuple[str, ...]:
        if domain is None:
            return DOMAINS
        self.target.domain_acceptance(domain)  # raises BadInputError on unknown names
        return (domain,)

    def _need_for(self, domain: str, topk: int) -> np.ndarray:
        key = (domain, topk)
        need = self._need.get(key)
        if need is None:
            params = self.target.domain_acceptance(domain)
            need = simulate_need(
                params, topk, self.samples, self.seed, domain, self.workload.temperature
            )
            self._need[key] = need
        return need

    def _mean_table(self, domain: str, topk: int) -> np.ndarray:
        """mean tau[s - 1, ndt] for all num_steps and num_draft_tokens 0.._NDT_MAX."""
        key = (domain, topk)
        table = self._mean_tau.get(key)
        if table is None:
            need = self._need_for(domain, topk)
            # Mean over samples of 1{need <= ndt}: an empirical CDF per (s, d).
            table = np.ones((MAX_STEPS, _NDT_MAX + 1))
            flat = np.sort(need.reshape(need.shape[0], -1), axis=0)
            ndts = np.arange(_NDT_MAX + 1)
            for j in range(flat.shape[1]):
                s, _d = divmod(j, MAX_STEPS)
                table[s] += np.searchsorted(flat[:, j], ndts, side="right") / need.shape[0]
            self._mean_tau[key] = table
        return table

    def _check(self, config: SpecConfig) -> None:
        # SGLang accepts deeper/wider trees than the model simulates; asking for one is a
        # user's choice (--config, a sweep space), so it is bad input, not a crash.
        if not (1 <= config.num_steps <= MAX_STEPS and 1 <= config.topk <= MAX_TOPK):
            raise InvalidConfigError(
                f"configuration {config.key}: the performance model covers num_steps "
                f"1..{MAX_STEPS} and topk 1..{MAX_TOPK}"
            )

    def expected_tau(self, config: SpecConfig, domain: str | None = None) -> float:
        self._check(config)
        ndt = config.num_draft_tokens
        if ndt > _NDT_MAX:
            # Past the table (spec_config accepts up to steps * topk + 1 = 65): the same
            # samples summed directly, so this stays the mean of tau_samples.
            vals = [
                float(tau_from_need(self._need_for(d, config.topk), config.num_steps, ndt).mean())
                for d in self._domains(domain)
            ]
        else:
            vals = [
                self._mean_table(d, config.topk)[config.num_steps - 1, ndt]
                for d in self._domains(domain)
            ]
        return float(np.mean(vals))

    def tau_samples(self, config: SpecConfig, domain: str | None = None) -> np.ndarray:
        """Accepted length per verify step, one per simulated tree (domains concatenated)."""
        self._check(config)
        key = (config, domain)
        cached = self._tau_samples.get(key)
        if cached is None:
            cached = np.concatenate(
                [
                    tau_from_need(
                        self._need_for(d, config.topk), config.num_steps, config.num_draft_tokens
                    )
                    for d in self._domains(domain)
                ]
            )
            cached.setflags(write=False)  # shared between callers: never mutate in place
            self._tau_samples[key] = cached
        return cached

    def acceptance_by_position(self, config: SpecConfig, domain: str | None = None) -> list[float]:
        """P(the accepted length reaches draft position i), i = 1..num_steps: what vLLM's
        per-position counters measure (accepted at position i / drafts)."""
        taus = self.tau_samples(config, domain)
        return [float(np.mean(taus - 1 >= i)) for i in range(1, config.num_steps + 1)]

    def sample_accept_lengths(
        self, config: SpecConfig, domain: str, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """n draws from the per-step accepted-length distribution (for the sim backend)."""
        pool = self.tau_samples(config, domain)
        return np.asarray(rng.choice(pool, size=n, replace=True), dtype=np.int64)

    # -- cost --------------------------------------------------------------------
    def decode_step_s(self, config: SpecConfig | None, batch: int) -> float:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if config is None:
            return float(self.cost.baseline_step_s(np.asarray(float(batch))))
        return float(
            self.cost.spec_step_s(
                np.asarray(config.num_steps),
                np.asarray(config.topk),
                np.asarray(config.num_draft_tokens),
                np.asarray(float(batch)),
            )
        )

    def prefill_s(self, prompt_tokens: int, batch: int = 1) -> float:
        return self.cost.prefill_s(prompt_tokens, batch)

    def step_breakdown(self, config: SpecConfig | None, batch: int) -> dict[str, float]:
        """Where one decode iteration's time goes, in ms: draft / verify / all-reduce / other
        (verify is the plain decode forward for the baseline)."""
        b = np.asarray(float(batch))
        if config is None:
            parts = self.cost.baseline_parts(b)
        else:
            parts = self.cost.spec_parts(
                np.asarray(config.num_steps),
                np.asarray(config.topk),
                np.asarray(config.num_draft_tokens),
                b,
            )
        return {
            "draft_ms": float(parts.draft) * 1e3,
            "verify_ms": float(parts.verify) * 1e3,
            "allreduce_ms": float(parts.allreduce) * 1e3,
            "other_ms": float(parts.other) * 1e3,
            "total_ms": float(parts.total) * 1e3,
        }

    def memory(self, config: SpecConfig | None, batch: int) -> MemoryFit:
        """Weights + KV + draft per GPU for `batch` requests of the workload's length."""
        w = self.workload
        default = self.target.overheads.context_tokens
        seq = (default if w.input_len is None else w.input_len) + (w.output_len or 0)
        if w.input_len is None and w.output_len is None:
            seq = 2 * default  # the preset's mean context is half-way through a request
        return memory_fit(
            self.target,
            self.hardware,
            self.engine,
            batch=batch,
            sequence_tokens=float(seq),
            draft_tokens=0 if config is None else config.num_draft_tokens,
            draft_tp=self.cost.draft_tp,
        )

    # -- predictions ---------------------------------------------------------------
    def resident(self, config: SpecConfig | None, concurrency: int) -> int:
        """Requests the engine holds at once when `concurrency` are offered: all of them,
        or as many as the KV cache left beside the weights (and the draft) can hold.

        The draft's weights and KV take room from the cache, so on a small card the
        speculative server holds fewer requests than the plain one and the rest wait
        (EAGLE-3 Table 5: vLLM on an RTX 3090 falls from 1.21x at batch 48 to 1.01x at 56).
        A configuration whose weights alone do not fit keeps `concurrency` (memory() says
        it does not fit)."""
        return int(min(concurrency, self._held_at_most(config)))

    def _recompute_s(self, held: float, held_plain: float, tau: float) -> float:
        """Prefill the speculative server redoes per iteration for the requests the plain
        server would hold and it cannot (`held` < `held_plain`).

        Engines admit requests before their whole KV is reserved and, when the cache runs
        out, evict a running request and later prefill its prompt and what it had
        generated again. Per iteration `held * tau / output_len` requests finish; a share
        (held_plain - held) / held of them (at most all) had been evicted once, each
        costing a prefill of the prompt plus half the completion. The plain server's own
        evictions past its capacity are left out of both sides.
        """
        if held >= held_plain:
            return 0.0
        w = self.workload
        out_len = float(w.output_len or 2 * self.target.overheads.context_tokens)
        redo = self.cost.context_tokens  # the prompt plus half the completion
        finished = held * tau / out_len
        return finished * min(1.0, (held_plain - held) / held) * self.prefill_s(int(redo))

    def _held_at_most(self, config: SpecConfig | None) -> float:
        """The most requests memory holds (inf when not even the weights fit)."""
        held = self.memory(config, 1).max_batch
        return float("inf") if held < 1 else float(held)

    def predict(
        self, config: SpecConfig | None, concurrency: int, domain: str | None = None
    ) -> Prediction:
        held_base = self.resident(None, concurrency)
        base = self.decode_step_s(None, held_base)
        base_tps = held_base / base
        if config is None:
            return Prediction(
                None, concurrency, 1.0, 1.0, base * 1e3, base * 1e3, base_tps, base_tps
            )
        tau = self.expected_tau(config, domain)
        held = self.resident(config, concurrency)
        step = self.decode_step_s(config, held) + self._recompute_s(held, held_base, tau)
        tps = held * tau / step
        return Prediction(
            config, concurrency, tau, tps / base_tps, step * 1e3, base * 1e3, tps, base_tps
        )

    def run_speedup(
        self,
        config: SpecConfig,
        concurrency: int,
        requests: int,
        domain: str | None = None,
        *,
        spread: float = 0.5,
    ) -> float:
        """Speedup of a closed-loop run of `requests` requests at most `concurrency` at once.

        A benchmark over a fixed prompt set (MT-bench has 80 questions) does not hold the
        batch at `concurrency`: the first wave starts together, the rest start as slots
        free up, and the batch drains at the end. Output lengths are lognormal quantiles
        (sigma `spread`) around the workload's output length; each step of a request
        yields tau tokens with speculation and 1 without, so both runs make the same
        tokens and the speedup is the ratio of their summed step times.
        """
        if requests < 1 or concurrency < 1:
            raise ValueError("requests and concurrency must be >= 1")
        mean_len = float(self.workload.output_len or 2 * self.target.overheads.context_tokens)
        q = ndtri((np.arange(requests) + 0.5) / requests)
        lengths = np.exp(spread * q - spread**2 / 2.0) * mean_len
        # Interleave long and short so that each wave mixes them, as a shuffled set does.
        order = np.argsort((np.arange(requests) * 0.618034) % 1.0)
        lengths = lengths[order]
        tau = self.expected_tau(config, domain)
        base = self._closed_loop_time(lengths, concurrency, None)
        spec = self._closed_loop_time(lengths / tau, concurrency, config)
        return base / spec

    def _closed_loop_time(
        self, steps: np.ndarray, concurrency: int, config: SpecConfig | None
    ) -> float:
        """Summed step time of requests needing `steps` iterations each, `concurrency` slots."""
        finish = np.zeros(min(concurrency, len(steps)))
        ends = []
        for need in steps:  # each request takes the slot that frees first
            i = int(np.argmin(finish))
            finish[i] += need
            ends.append(finish[i])
        starts = np.array(ends) - steps
        events = np.unique(np.concatenate([starts, ends]))
        mids = (events[:-1] + events[1:]) / 2.0
        active = (
            (starts[None, :] <= mids[:, None]) & (np.array(ends)[None, :] > mids[:, None])
        ).sum(1)
        widths = np.diff(events)
        total = 0.0
        for b in np.unique(active[active > 0]):
            step = self.decode_step_s(config, int(b))
            total += step * float(widths[active == b].sum())
        return total

    def predict_grid(
        self,
        configs: Sequence[SpecConfig],
        concurrencies: Sequence[int],
        domain: str | None = None,
    ) -> list[Prediction]:
        """Every (config, concurrency) pair, config-major; one vectorised cost evaluation."""
        if not configs or not concurrencies:
            return []
        for c in configs:
            self._check(c)
        for conc in concurrencies:
            if conc < 1:
                raise ValueError(f"concurrency must be >= 1, got {conc}")
        taus = np.array([self.expected_tau(c, domain) for c in configs])
        s = np.array([c.num_steps for c in configs], dtype=float)[:, None]
        k = np.array([c.topk for c in configs], dtype=float)[:, None]
        n = np.array([c.num_draft_tokens for c in configs], dtype=float)[:, None]
        b = np.asarray(concurrencies, dtype=float)[None, :]
        caps = np.array([[self._held_at_most(c)] for c in configs])
        held = np.minimum(b, caps)
        held_base = np.minimum(b, self._held_at_most(None))[0]
        step = self.cost.spec_step_s(s, k, n, held)
        base = self.cost.baseline_step_s(held_base)
        for row, col in zip(*np.nonzero(held < held_base[None, :]), strict=True):
            step[row, col] += self._recompute_s(
                float(held[row, col]), float(held_base[col]), float(taus[row])
            )
        out: list[Prediction] = []
        for i, c in enumerate(configs):
            for j, conc in enumerate(concurrencies):
                tps = held[i, j] * taus[i] / step[i, j]
                base_tps = held_base[j] / base[j]
                out.append(
                    Prediction(
                        c,
                        int(conc),
                        float(taus[i]),
                        float(tps / base_tps),
                        float(step[i, j] * 1e3),
                        float(base[j] * 1e3),
                        float(tps),
                        float(base_tps),
                    )
                )
        return out

    # -- ground truths for benchmarks --------------------------------------------
    def perturbed(self, seed: int, strength: float = 1.0) -> PerformanceModel:
        """A plausible 'true' machine that this prior gets wrong, deterministic in seed.

        Acceptance changes per domain (sharpness, spread, agreement) and the cost
        constants change by tens of percent (all-reduce alpha and bandwidth, HBM and
        compute efficiency, fixed overheads), so a search seeded by this model starts
        from a wrong-ish but informative guess.
        """
        rng = np.random.default_rng([seed, 0x5EED])
        st = float(strength)
        acc: list[tuple[str, DomainAcceptance]] = []
        for name, p in self.target.acceptance:
            agreement = min(0.995, p.agreement * math.exp(rng.normal(0.0, 0.06 * st)))
            acc.append(
                (
                    name,
                    DomainAcceptance(
                        confidence_mu=p.confidence_mu + rng.normal(0.0, 0.35 * st),
                        confidence_sigma=p.confidence_sigma * math.exp(rng.normal(0.0, 0.15 * st)),
                        agreement=agreement,
                        depth_decay=min(1.0, p.depth_decay * math.exp(rng.normal(0.0, 0.02 * st))),
                        temperature_loss=p.temperature_loss,
                    ),
                )
            )

        def factor(spread: float) -> float:
            return math.exp(rng.uniform(-spread, spread) * st)

        old = self.cost.scales
        scales = CostScales(
            allreduce_alpha=old.allreduce_alpha * factor(math.log(1.4)),
            allreduce_bandwidth=old.allreduce_bandwidth * factor(math.log(1.4)),
            hbm_efficiency=old.hbm_efficiency * factor(math.log(1.15)),
            compute_efficiency=old.compute_efficiency * factor(math.log(1.25)),
            layer_overhead=old.layer_overhead * factor(math.log(1.3)),
            draft_overhead=old.draft_overhead * factor(math.log(1.3)),
            spec_overhead=old.spec_overhead * factor(math.log(1.3)),
        )
        target = replace(self.target, acceptance=tuple(acc))
        return PerformanceModel(
            target,
            self.hardware,
            seed=self.seed + 7919 * (seed + 1),
            samples=self.samples,
            cost_scales=scales,
            engine=self.engine,
            workload=self.workload,
            draft_tp=self.cost.draft_tp,
        )


def break_even_concurrency(predictions: Sequence[Prediction]) -> float | None:
    """Concurrency at which one configuration's speedup falls through 1.

    Interpolated linearly in log(concurrency) between the two measured points that
    bracket the crossing. None when the speedup never crosses 1 downwards within the
    range (it stays above, or is below from the first point on).
    """
    configs = {p.config for p in predictions}
    if len(configs) > 1:
        raise ValueError("break_even_concurrency needs predictions of one configuration")
    pts = sorted((p.concurrency, p.speedup) for p in predictions)
    for (c0, s0), (c1, s1) in itertools.pairwise(pts):
        if s0 >= 1.0 > s1:
            if c0 == c1:
                return float(c0)
            w = (s0 - 1.0) / (s0 - s1)
            return float(math.exp(math.log(c0) + w * (math.log(c1) - math.log(c0))))
    return None
