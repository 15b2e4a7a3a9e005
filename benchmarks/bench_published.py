"""The performance model against every published EAGLE-3 figure it is checked on.

Prints, for each row of specbench/model/data/published.toml, the published figure, the
model's (SIMULATED) figure and their ratio, then the median absolute error. With
--markdown it prints the same table as Markdown (the README's model-vs-published table).

Run: python benchmarks/bench_published.py [--markdown] [--samples 2000]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

from specbench.model.published import RowResult, evaluate, load_published, median_abs_error


def _config(r: RowResult) -> str:
    if r.config is None:
        return "-"
    key = f"({r.config.num_steps}, {r.config.topk}, {r.config.num_draft_tokens})"
    if r.row.same_as is not None:
        return f"as {r.row.same_as}: {key}"
    return key if r.row.config is not None else f"best: {key}"


def _setting(r: RowResult) -> str:
    row = r.row
    run = f", {row.requests} prompts" if row.requests else ""
    draft = f", draft {row.draft}" if row.draft else ""
    return f"{row.target}, {row.hardware} TP {row.tp}, {row.engine}, batch {row.batch}{run}{draft}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    results = evaluate(load_published(), samples=args.samples)
    elapsed = time.perf_counter() - t0
    if args.markdown:
        print("| row | setting | config | metric | published | model | ratio |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            print(
                f"| {r.row.id} | {_setting(r)} | {_config(r)} | {r.row.metric} | "
                f"{r.row.value:g} | {r.predicted:.2f} | {r.ratio:.2f} |"
            )
    else:
        print(f"{'row':28s} {'metric':22s} {'published':>10s} {'model':>8s} {'ratio':>6s}  config")
        for r in results:
            print(
                f"{r.row.id:28s} {r.row.metric:22s} {r.row.value:10.2f} {r.predicted:8.2f} "
                f"{r.ratio:6.2f}  {_config(r)}"
            )
    eagle2 = [r for r in results if r.row.draft and r.row.same_as]
    for r in eagle2:  # what the model's own best tree for that draft would give
        alone = replace(r.row, config=None, same_as=None)
        best = evaluate([alone], samples=args.samples)[0]
        print(
            f"\n{r.row.id} at the model's own best configuration {_config(best)}: "
            f"{best.predicted:.2f} (ratio {best.ratio:.2f})"
        )
    worst = max(results, key=lambda r: abs(r.ratio - 1.0))
    print(
        f"\nrows: {len(results)}; median absolute error: {median_abs_error(results):.1%}; "
        f"worst: {worst.row.id} ({worst.ratio:.2f}); evaluated in {elapsed:.2f} s (SIMULATED)"
    )


if __name__ == "__main__":
    main()
