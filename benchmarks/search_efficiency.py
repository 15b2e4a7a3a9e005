"""How many measurements the model-guided search needs, against a grid, on SIMULATED truths.

For each seed, the "true" machine is the performance model perturbed away from the prior
(``PerformanceModel.perturbed``), optionally on other hardware than the prior assumes.
The objective is the truth's predicted speedup at the primary concurrency times a small
multiplicative measurement noise. The search is the sweep's own code path (prior
candidates, ConfigSearch with projection and reuse, the same sampler settings) on an
in-memory study; a "measurement" is one configuration handed out by the search.

Reported per strategy: measurements until the configuration the search would recommend
(best measured value so far) is within 2% of the exhaustive grid's true best, as the
median / p90 over seeds and as a fraction of the grid size. Grid baselines: SGLang's
bench_speculative.py enumeration order, and a random order (one permutation per seed).

    python benchmarks/search_efficiency.py                # 20 seeds, TPE, both scenarios
    python benchmarks/search_efficiency.py --samplers tpe,gp --seeds 10

All numbers are SIMULATED (they come from the performance model).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.spec_config import SpecConfig
from specbench.sweeps.options import DEFAULT_PRIOR_TOP, startup_trials
from specbench.sweeps.search import ConfigSearch, make_sampler
from specbench.sweeps.setup import prior_candidates
from specbench.sweeps.space import SearchSpace, parse_space

WITHIN = 0.02
NOISE = 0.01


@dataclass(frozen=True)
class Scenario:
    name: str
    prior_hardware: str
    truth_hardware: str
    concurrency: int


SCENARIOS = (
    Scenario("perturbed, same hardware", "h200-nvlink", "h200-nvlink", 1),
    Scenario("perturbed, same hardware, c=32", "h200-nvlink", "h200-nvlink", 32),
    Scenario("perturbed, PCIe P2P truth", "h200-nvlink", "h100-pcie-p2p", 1),
    Scenario("perturbed, host-staged truth", "h200-nvlink", "h100-pcie-host-staged", 1),
)


def _hits(
    order: Sequence[SpecConfig],
    measure: Callable[[SpecConfig], float],
    truth: dict[SpecConfig, float],
    goal: float,
) -> int:
    """Measurements until the best *measured* configuration is truly within the goal."""
    best_value = -np.inf
    best: SpecConfig | None = None
    for n, config in enumerate(order, start=1):
        value = measure(config)
        if value > best_value:
            best_value, best = value, config
        if best is not None and truth[best] >= goal:
            return n
    return len(order)


def run_search(
    sampler: str,
    seed: int,
    prior: PerformanceModel,
    space: SearchSpace,
    measure: Callable[[SpecConfig], float],
    truth: dict[SpecConfig, float],
    goal: float,
    concurrency: int,
) -> int:
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(
            "optuna", sampler, seed=seed, n_startup_trials=startup_trials(DEFAULT_PRIOR_TOP)
        ),
    )
    search = ConfigSearch(study, space, "optuna", sampler_name=sampler, worker="bench:0")
    search.enqueue(prior_candidates(prior, prior.target, space, concurrency, DEFAULT_PRIOR_TOP))
    best_value = -np.inf
    best: SpecConfig | None = None
    measured = 0
    while measured < len(space):
        proposal = search.propose()
        if proposal is None:
            break
        value = measure(proposal.config)
        measured += 1
        search.complete(proposal, value, [{}])
        if value > best_value:
            best_value, best = value, proposal.config
        if best is not None and truth[best] >= goal:
            return measured
    return len(space)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samplers", default="tpe")
    parser.add_argument("--target", default="minimax-m2.7")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")

    target = load_target(args.target)
    space = parse_space(None)
    configs = list(space.configs)
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    print(
        f"SIMULATED search efficiency: {len(configs)} valid configurations, "
        f"{args.seeds} seeds, goal within {WITHIN:.0%} of the grid's best, "
        f"measurement noise {NOISE:.0%}"
    )
    for scenario in SCENARIOS:
        prior = PerformanceModel(target, load_hardware(scenario.prior_hardware), seed=0)
        results: dict[str, list[int]] = {s: [] for s in samplers}
        results["grid (enumeration order)"] = []
        results["grid (random order)"] = []
        prior_hits: list[bool] = []
        started = time.perf_counter()
        for seed in range(args.seeds):
            base = PerformanceModel(target, load_hardware(scenario.truth_hardware), seed=seed)
            truth_model = base.perturbed(seed)
            preds = truth_model.predict_grid(configs, [scenario.concurrency])
            truth = {p.config: p.speedup for p in preds if p.config is not None}
            goal = (1.0 - WITHIN) * max(truth.values())

            def make_measure(
                s: int, truth: dict[SpecConfig, float] = truth
            ) -> Callable[[SpecConfig], float]:
                rng = np.random.default_rng([s, 99])
                return lambda c: truth[c] * (1.0 + rng.normal(0.0, NOISE))

            for sampler in samplers:
                results[sampler].append(
                    run_search(
                        sampler,
                        seed,
                        prior,
                        space,
                        make_measure(seed),
                        truth,
                        goal,
                        scenario.concurrency,
                    )
                )
            results["grid (enumeration order)"].append(
                _hits(configs, make_measure(seed), truth, goal)
            )
            shuffled = list(np.random.default_rng([seed, 7]).permutation(len(configs)))
            results["grid (random order)"].append(
                _hits([configs[i] for i in shuffled], make_measure(seed), truth, goal)
            )
            top = max(prior.predict_grid(configs, [scenario.concurrency]), key=lambda p: p.speedup)
            assert top.config is not None
            prior_hits.append(truth[top.config] >= goal)
        elapsed = time.perf_counter() - started
        print(
            f"\n[{scenario.name}] prior {scenario.prior_hardware} -> truth "
            f"{scenario.truth_hardware} (perturbed per seed), concurrency "
            f"{scenario.concurrency}; the prior's own top pick is within 2% in "
            f"{sum(prior_hits)}/{len(prior_hits)} seeds ({elapsed:.1f} s)"
        )
        print(f"  {'strategy':26s} {'median':>7s} {'p90':>6s} {'max':>5s} {'median/grid':>12s}")
        for name, values in results.items():
            median = statistics.median(values)
            p90 = float(np.percentile(values, 90))
            print(
                f"  {name:26s} {median:7.1f} {p90:6.1f} {max(values):5d} "
                f"{median / len(configs):11.1%}"
            )


if __name__ == "__main__":
    main()
