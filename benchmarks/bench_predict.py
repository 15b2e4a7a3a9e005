"""How fast is `predict` over the whole search space, Monte-Carlo included?

Target (issue): every valid configuration x 4 concurrencies, from a cold model (the tree
Monte-Carlo runs inside the timing), in under 2 s on 2 cores. Wall times depend on the
machine, so the script reports them as ratios against references measured in the same
run:
  * numpy reference: drawing as many normal variates as the Monte-Carlo visits tree
    nodes, then argsorting them in rows as wide as the deepest candidate pool; the
    least work any Monte-Carlo of the same size could do;
  * scalar reference: the same predictions one `predict()` call at a time on a warm
    model (what `predict_grid` vectorises away).
It also times the whole public call a user makes, ``specbench.predict`` (the grid plus
the best rows' breakdowns and the break-even scans), against the cold grid.

Run: python benchmarks/bench_predict.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numpy as np

import specbench
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.model.acceptance import MAX_STEPS
from specbench.model.performance import DEFAULT_SAMPLES
from specbench.spec_config import TOPK_CHOICES, valid_configs

CONCURRENCIES = [1, 8, 32, 128]
TARGET_S = 2.0


def cold_grid() -> float:
    t0 = time.perf_counter()
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
    preds = model.predict_grid(valid_configs(), CONCURRENCIES)
    assert len(preds) == len(valid_configs()) * len(CONCURRENCIES)
    return time.perf_counter() - t0


def numpy_reference() -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _domain in range(3):
        for k in TOPK_CHOICES:
            pool = k + (MAX_STEPS - 1) * k * k
            z = rng.standard_normal((DEFAULT_SAMPLES, pool))
            np.argsort(z, axis=1)
    return time.perf_counter() - t0


def scalar_reference(model: PerformanceModel) -> float:
    t0 = time.perf_counter()
    for cfg in valid_configs():
        for conc in CONCURRENCIES:
            model.predict(cfg, conc)
    return time.perf_counter() - t0


def warm_grid(model: PerformanceModel) -> float:
    t0 = time.perf_counter()
    model.predict_grid(valid_configs(), CONCURRENCIES)
    return time.perf_counter() - t0


def public_predict() -> float:
    """``specbench.predict`` as a program calls it: every configuration, break-evens."""
    start = time.perf_counter()
    table = specbench.predict("minimax-m2.7", hardware="h200-nvlink", concurrencies=CONCURRENCIES)
    assert len(table.rows) >= len(valid_configs()) * len(CONCURRENCIES)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cold_grid()  # import and page-in warm-up
    grid = [cold_grid() for _ in range(args.repeat)]
    ref = [numpy_reference() for _ in range(args.repeat)]
    warm = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
    warm.predict_grid(valid_configs(), CONCURRENCIES)
    scalar = [scalar_reference(warm) for _ in range(args.repeat)]
    hot = [warm_grid(warm) for _ in range(args.repeat)]
    g, r, s = statistics.median(grid), statistics.median(ref), statistics.median(scalar)
    w = statistics.median(hot)
    api = statistics.median(public_predict() for _ in range(args.repeat))
    n = len(valid_configs()) * len(CONCURRENCIES)
    print(f"predictions: {len(valid_configs())} configs x {len(CONCURRENCIES)} concurrencies = {n}")
    print(f"MC samples per domain: {DEFAULT_SAMPLES}; cores allowed: 2; repeats: {args.repeat}")
    print(
        f"cold predict_grid (MC + costs), median: {g:.3f} s   "
        f"(target < {TARGET_S:.1f} s: {'OK' if g < TARGET_S else 'MISSED'})"
    )
    print(
        f"numpy reference (same node count, normals + argsort): {r:.3f} s   "
        f"ratio grid/reference = {g / r:.2f}"
    )
    print(
        f"scalar predict() loop on a warm model: {s:.3f} s; warm predict_grid: {w:.3f} s   "
        f"ratio warm grid/scalar = {w / s:.3f}"
    )
    print(f"specbench.predict (grid, best rows, break-even scans): {api:.3f} s   "
          f"ratio to the cold grid = {api / g:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
