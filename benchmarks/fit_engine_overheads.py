"""Refit an engine profile's overhead constants to the published rows (how they were made).

Least squares on log(model / published) over the engine's speedup and baseline rows of
specbench/model/data/published.toml, plus the EAGLE-3 Table 3 shape (speedup at batch 24
over batch 4) for SGLang. Prints the fitted constants (to copy into
specbench/model/data/engines/<engine>.toml) and the rows at the fit.

Run: python benchmarks/fit_engine_overheads.py sglang scheduler_us,spec_token_us,draft_step_us
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from scipy.optimize import least_squares

from specbench.model.engines import load_engine
from specbench.model.published import evaluate, load_published

#: Bounds (us) that keep the fit physical: a per-request cost above 100 us per iteration
#: would make batch-64 decode several times slower than engines run it.
BOUNDS = {"request_us": (0.0, 100.0), "draft_step_us": (50.0, 5000.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine")
    parser.add_argument("params", help="comma-separated constants to fit")
    parser.add_argument("--samples", type=int, default=1500)
    args = parser.parse_args()
    free = args.params.split(",")
    base = load_engine(args.engine)
    rows = [
        r
        for r in load_published()
        if r.engine == args.engine and r.metric not in ("tau", "tau_temperature_ratio")
    ]
    values = np.array([r.value for r in rows])
    ids = [r.id for r in rows]

    def predict(x: np.ndarray) -> np.ndarray:
        engine = dataclasses.replace(base, **{n: float(v) for n, v in zip(free, x, strict=True)})
        res = evaluate(rows, samples=args.samples, engines={args.engine: engine})
        return np.array([r.predicted for r in res])

    def residuals(x: np.ndarray) -> np.ndarray:
        p = predict(x)
        out = np.log(p / values)
        if "eagle3-table3-b4" in ids:  # the shape, weighted as three rows
            shape = p[ids.index("eagle3-table3-b24")] / p[ids.index("eagle3-table3-b4")]
            out = np.append(out, 3.0 * (shape - 0.76))
        return out

    x0 = np.array([getattr(base, n) for n in free], dtype=float)
    lo = [
        BOUNDS.get(n, (0.0, 5000.0))[0] if n != "tree_attention_efficiency" else 0.05 for n in free
    ]
    hi = [
        BOUNDS.get(n, (0.0, 5000.0))[1] if n != "tree_attention_efficiency" else 1.0 for n in free
    ]
    fit = least_squares(
        residuals,
        np.clip(x0, lo, hi),
        bounds=(lo, hi),
        diff_step=0.05,
        x_scale=np.maximum(np.abs(x0), 1.0),
    )
    for n, v in zip(free, fit.x, strict=True):
        print(f"{n} = {v:.4g}")
    for r, p in zip(rows, predict(fit.x), strict=True):
        print(f"{r.id:28s} {r.value:8.2f} {p:8.2f} {p / r.value:6.3f}")


if __name__ == "__main__":
    main()
