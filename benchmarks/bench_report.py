"""Report rendering speed and size for a large run: 200 trials x 3 concurrencies.

Targets (the report issue): the HTML renders in < 5 s and is < 3 MB. The absolute time
depends on the machine, so it is printed next to two references measured in the same
process: rendering a 1-trial run (fixed costs: reading, templating, seven figures) and
one bare matplotlib SVG figure. Run on demand:

    python benchmarks/bench_report.py [--trials 200] [--requests-per-trial 60] [--repeat 3]

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from specbench.report.html import render_report
from specbench.report.plots import empty_svg_figure
from tests.support.run_dirs import write_run

TARGET_S = 5.0
TARGET_BYTES = 3 * 1024 * 1024


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    # A sim sweep records ~16 requests at concurrency 1 and 8 and ~64 at 32, each with
    # 255 inter-token latencies: 32 per (trial, concurrency) on average.
    parser.add_argument("--requests-per-trial", type=int, default=32)
    parser.add_argument("--itl-points", type=int, default=255)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        big = write_run(
            root / "big",
            num_configs=args.trials,
            failed=max(1, args.trials // 20),
            requests_per_trial=args.requests_per_trial,
            itl_points=args.itl_points,
        )
        small = write_run(root / "small", num_configs=1, failed=0, requests_per_trial=6)
        print(
            f"fixture: {args.trials} trials x 3 concurrencies written in {time.perf_counter() - t0:.1f} s"
        )
        requests_mb = (big / "requests.jsonl").stat().st_size / 1e6

        bare = timed(empty_svg_figure, args.repeat)
        one = timed(lambda: render_report(small), args.repeat)
        many = timed(lambda: render_report(big), args.repeat)
        md = timed(lambda: render_report(big, fmt="md"), args.repeat)
        size = (big / "report.html").stat().st_size

        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "specbench", "report", str(big)], check=True, capture_output=True
        )
        cold = time.perf_counter() - start

    print(f"requests.jsonl of the big run: {requests_mb:.1f} MB")
    print(f"reference: one bare matplotlib SVG figure      {bare * 1000:8.1f} ms")
    print(f"reference: HTML report of a 1-trial run        {one * 1000:8.1f} ms")
    print(f"HTML report, {args.trials} trials x 3 concurrencies  {many * 1000:8.1f} ms")
    print(f"  ratio to the 1-trial report:                 {many / one:8.2f}x")
    print(f"  ratio to one bare figure:                    {many / bare:8.1f}x")
    print(f"Markdown summary, same run                     {md * 1000:8.1f} ms")
    print(f"`specbench report` end to end (cold process)   {cold * 1000:8.1f} ms")
    print(f"HTML size: {size / 1024:.0f} KiB ({size / TARGET_BYTES:.0%} of the 3 MiB target)")
    ok = many < TARGET_S and cold < TARGET_S and size < TARGET_BYTES
    print("targets (< 5 s, < 3 MiB):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
