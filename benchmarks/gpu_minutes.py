"""GPU-minutes to a recommendation within 2% of the grid's best, launches included.

On a GPU host the cost of a sweep is server launches, not requests: a large MoE model
with an EAGLE3 draft takes minutes to start. This benchmark charges every strategy the
same price list and counts GPU-minutes (GPUs x wall minutes) until the configuration it
would recommend at the primary concurrency is truly within 2% of the grid's best:

* launch: ``--launch`` seconds per server (default 300 s, a large model);
* measuring one load: ``ceil(requests / c) + 1`` waves (the +1 is the warm-up at full
  concurrency) of ``max_new_tokens`` at the truth's per-stream tokens/s.

Strategies:

* specbench: one baseline server, then the model-guided TPE search (the sweep's own
  ConfigSearch, prior candidates and sampler settings); each configuration is one
  server measured at every concurrency, lowest first, and pruned after its first load
  when its 95% interval is clearly below the best one's (specbench.sweeps.budget).
  Also shown without pruning.
* SGLang's grid (scripts/playground/bench_speculative.py): a fresh server per (batch
  size, steps, topk, draft tokens), batch size outermost, the no-speculation run
  (0, 0, 0) first in each batch-size block; only the primary batch size's block is
  charged (the cheapest way to its recommendation).

The ground truth is the performance model perturbed per seed (as in
search_efficiency.py) with 1% multiplicative measurement noise; the confidence
interval of a measured speedup is modelled as +-2 noise sigmas. All numbers are
SIMULATED.

    python benchmarks/gpu_minutes.py                  # 10 seeds, 300 s launches
    python benchmarks/gpu_minutes.py --launch 120 --seeds 20
"""

from __future__ import annotations

import argparse
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna

from specbench.model import PerformanceModel, TargetPreset, load_hardware, load_target
from specbench.spec_config import SpecConfig
from specbench.sweeps.budget import Interval, LoadCost, prune_reason
from specbench.sweeps.options import DEFAULT_PRIOR_TOP, requests_per_load, startup_trials
from specbench.sweeps.refit import InLoopModel
from specbench.sweeps.search import ConfigSearch, make_sampler
from specbench.sweeps.setup import prior_candidates
from specbench.sweeps.space import SearchSpace, parse_space

WITHIN = 0.02
NOISE = 0.01
CONCURRENCIES = (1, 8, 32)
NUM_PROMPTS = 16
MAX_NEW_TOKENS = 256


@dataclass
class Truth:
    """One seed's simulated machine: speedups and per-stream speeds per concurrency."""

    speedup: dict[tuple[SpecConfig, int], float]
    per_stream: dict[tuple[SpecConfig | None, int], float]
    goal: float
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    tau: dict[SpecConfig, float] = field(default_factory=dict)

    def measure_tau(self, config: SpecConfig) -> float:
        """The run's accept length (per-request counters: far less noisy than speed)."""
        return max(1.0, self.tau[config] * (1.0 + self.rng.normal(0.0, NOISE / 4)))

    def measure(self, config: SpecConfig, concurrency: int) -> Interval:
        value = self.speedup[config, concurrency] * (1.0 + self.rng.normal(0.0, NOISE))
        half = 2.0 * NOISE * value
        return Interval(value, value - half, value + half)


def load_seconds(truth: Truth, config: SpecConfig | None, concurrency: int) -> float:
    cost = LoadCost(
        concurrency,
        requests_per_load(NUM_PROMPTS, concurrency),
        MAX_NEW_TOKENS,
        truth.per_stream[config, concurrency],
        warmup_requests=concurrency,
    )
    return cost.seconds()


def make_truth(
    target: TargetPreset, hardware: str, seed: int, configs: Sequence[SpecConfig]
) -> Truth:
    model = PerformanceModel(target, load_hardware(hardware), seed=seed).perturbed(seed)
    preds = model.predict_grid(list(configs), list(CONCURRENCIES))
    speedup = {(p.config, p.concurrency): p.speedup for p in preds if p.config is not None}
    per_stream: dict[tuple[SpecConfig | None, int], float] = {
        (p.config, p.concurrency): p.tokens_per_s / p.concurrency for p in preds
    }
    for c in CONCURRENCIES:
        base = model.predict(None, c)
        per_stream[None, c] = base.tokens_per_s / c
    best = max(v for (_, c), v in speedup.items() if c == CONCURRENCIES[0])
    tau = {p.config: p.tau for p in preds if p.config is not None}
    return Truth(speedup, per_stream, (1.0 - WITHIN) * best, np.random.default_rng([seed, 99]), tau)


#: Truths outside the model's own family (the refit cannot reach them by its scales):
#: name -> (tau map, extra step-time factor), applied to a perturbed truth.
OFF_FAMILY = {
    # the verify pass grows faster than linearly with the tree's node count
    "verify grows faster": (
        lambda c, tau: tau,
        lambda c: 1.0 + 0.25 * (c.num_draft_tokens / 16.0) ** 1.6,
    ),
    # acceptance saturates: deep positions accept far less than the model's decay says
    "acceptance saturates": (
        lambda c, tau: 1.0 + 1.6 * (1.0 - math.exp(-(tau - 1.0) / 1.6)),
        lambda c: 1.0,
    ),
    # an overhead the model lacks: a fixed cost per draft step, 4% of a plain step each
    "per-step overhead": (lambda c, tau: tau, lambda c: 1.0 + 0.04 * c.num_steps),
}


def off_family(truth: Truth, kind: str) -> Truth:
    """`truth` with one of OFF_FAMILY's changes: new taus, step times scaled."""
    tau_of, step_factor = OFF_FAMILY[kind]
    tau = {c: tau_of(c, t) for c, t in truth.tau.items()}
    speedup = {
        (c, conc): v * (tau[c] / truth.tau[c]) / step_factor(c)
        for (c, conc), v in truth.speedup.items()
    }
    per_stream = {
        (c, conc): v if c is None else v * (tau[c] / truth.tau[c]) / step_factor(c)
        for (c, conc), v in truth.per_stream.items()
    }
    best = max(v for (_, conc), v in speedup.items() if conc == CONCURRENCIES[0])
    return Truth(speedup, per_stream, (1.0 - WITHIN) * best, truth.rng, tau)


def refit_minutes(
    truth: Truth, prior: PerformanceModel, space: SearchSpace, launch_s: float
) -> tuple[float, int, int]:
    """Calibration in the loop (specbench.sweeps.refit): wall seconds to a good
    recommendation, launches to it, and launches until the refit said settled."""
    primary = CONCURRENCIES[0]
    refit = InLoopModel(prior, list(space.configs), primary, noise=NOISE)
    seconds = launch_s + sum(load_seconds(truth, None, c) for c in CONCURRENCIES)
    good_s, good_at = math.inf, 0
    for launch in range(1, len(space) + 1):
        config = refit.next_config()
        if config is None:
            break
        seconds += launch_s + sum(load_seconds(truth, config, c) for c in CONCURRENCIES)
        refit.add(config, truth.measure(config, primary).value, truth.measure_tau(config))
        best = refit.best_measured()
        if good_at == 0 and best is not None and truth.speedup[best[0], primary] >= truth.goal:
            good_s, good_at = seconds, launch
        if refit.settled(launch) is not None:
            return good_s, good_at, launch
    return good_s, good_at, refit.measured


def specbench_minutes(
    truth: Truth, prior: PerformanceModel, space: SearchSpace, seed: int, launch_s: float
) -> tuple[float, float]:
    """Wall seconds to a good recommendation, (with pruning, without pruning)."""
    primary = CONCURRENCIES[0]
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(
            "optuna", "tpe", seed=seed, n_startup_trials=startup_trials(DEFAULT_PRIOR_TOP)
        ),
    )
    search = ConfigSearch(study, space, "optuna", sampler_name="tpe", worker="bench:0")
    search.enqueue(prior_candidates(prior, prior.target, space, primary, DEFAULT_PRIOR_TOP))
    baseline = launch_s + sum(load_seconds(truth, None, c) for c in CONCURRENCIES)
    pruned_s = unpruned_s = baseline
    intervals: dict[str, Interval] = {}
    best_value, best = -np.inf, None
    for _ in range(len(space)):
        proposal = search.propose()
        if proposal is None:
            break
        config = proposal.config
        first = truth.measure(config, primary)
        rest = sum(load_seconds(truth, config, c) for c in CONCURRENCIES[1:])
        head = launch_s + load_seconds(truth, config, primary)
        unpruned_s += head + rest
        pruned_s += head + (0.0 if prune_reason(first, intervals, primary) else rest)
        intervals[config.key] = first
        search.complete(proposal, first.value, [{}])
        if first.value > best_value:
            best_value, best = first.value, config
        if best is not None and truth.speedup[best, primary] >= truth.goal:
            break
    return pruned_s, unpruned_s


def grid_minutes(truth: Truth, configs: Sequence[SpecConfig], launch_s: float) -> float:
    """bench_speculative's order: the primary batch size's block, baseline first."""
    primary = CONCURRENCIES[0]
    seconds = launch_s + load_seconds(truth, None, primary)
    best_value, best = -np.inf, None
    for config in configs:
        seconds += launch_s + load_seconds(truth, config, primary)
        value = truth.measure(config, primary).value
        if value > best_value:
            best_value, best = value, config
        if best is not None and truth.speedup[best, primary] >= truth.goal:
            break
    return seconds


def bench_order(configs: Sequence[SpecConfig]) -> list[SpecConfig]:
    """steps, then topk, then draft tokens, ascending (bench_speculative's nested loops)."""
    return sorted(configs, key=lambda c: (c.num_steps, c.topk, c.num_draft_tokens))


#: The shipped interconnect classes: every (prior, truth) pair of them is a scenario, the
#: prior right about the interconnect (what a probed host gets) and wrong about it.
CLASSES = ("h200-nvlink", "h100-pcie-p2p", "h100-pcie-host-staged")
SCENARIOS = tuple((prior, truth) for truth in CLASSES for prior in CLASSES)


def _minutes(values: Sequence[float], gpus: int) -> tuple[float, float]:
    minutes = [v * gpus / 60.0 for v in values]
    return statistics.median(minutes), float(np.percentile(minutes, 90))


def run_scenario(
    target: TargetPreset,
    prior_hw: str,
    truth_hw: str,
    seeds: int,
    launch_s: float,
    kind: str | None = None,
) -> dict[str, list[float]]:
    """Wall seconds per strategy and seed."""
    space = parse_space(None)
    configs = bench_order(list(space.configs))
    prior = PerformanceModel(target, load_hardware(prior_hw), seed=0)
    runs: dict[str, list[float]] = {
        "pruned": [],
        "unpruned": [],
        "refit": [],
        "settled": [],
        "grid": [],
    }
    for seed in range(seeds):
        truth = make_truth(target, truth_hw, seed, configs)
        if kind is not None:
            truth = off_family(truth, kind)
        pruned, unpruned = specbench_minutes(truth, prior, space, seed, launch_s)
        runs["pruned"].append(pruned)
        runs["unpruned"].append(unpruned)
        good_s, _, settled = refit_minutes(truth, prior, space, launch_s)
        runs["refit"].append(good_s)
        runs["settled"].append(float(settled))
        runs["grid"].append(grid_minutes(truth, configs, launch_s))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--launch", type=float, default=300.0, help="seconds per server launch")
    parser.add_argument("--target", default="minimax-m2.7")
    parser.add_argument(
        "--off-family-only", action="store_true", help="only the truths outside the model's family"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    target = load_target(args.target)
    gpus = target.default_tp
    print(
        f"SIMULATED GPU-minutes ({gpus} GPUs x wall minutes, {args.launch:g} s per launch) "
        f"to a recommendation within {WITHIN:.0%} of the grid's best at concurrency "
        f"{CONCURRENCIES[0]}, {args.target}, median / p90 over {args.seeds} seeds"
    )
    print(
        "| truth (perturbed) | prior | specbench, CI pruning | specbench, no pruning "
        "| calibration in the loop | launches to settled | SGLang grid order "
        "| grid / in the loop (p90) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    scenarios = [] if args.off_family_only else [(p, t, None) for p, t in SCENARIOS]
    scenarios += [("h200-nvlink", "h200-nvlink", kind) for kind in OFF_FAMILY]
    for prior_hw, truth_hw, kind in scenarios:
        runs = run_scenario(target, prior_hw, truth_hw, args.seeds, args.launch, kind)
        truth_name = truth_hw if kind is None else f"{truth_hw}, {kind}"
        settled = runs.pop("settled")
        cells = {key: _minutes(values, gpus) for key, values in runs.items()}
        text = {key: f"{m:,.0f} / {p:,.0f}" for key, (m, p) in cells.items()}
        ratio = cells["grid"][0] / cells["refit"][1]
        launches = f"{statistics.median(settled):.0f} / {np.percentile(settled, 90):.0f}"
        print(
            f"| {truth_name} | {prior_hw} | {text['pruned']} | {text['unpruned']} "
            f"| {text['refit']} | {launches} | {text['grid']} | {ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()
