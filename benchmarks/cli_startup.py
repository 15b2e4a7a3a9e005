"""Start-up time of `specbench COMMAND -h`, as a ratio to `specbench --version`.

Both are timed in the same run (best of 5 each), so the ratio does not depend on how
busy the machine is. `--version` imports only click and the CLI's group; a command's help
should cost about the same (the target: every `COMMAND -h` under 0.5 s).

    python benchmarks/cli_startup.py
"""

from __future__ import annotations

import subprocess
import sys
import time

COMMANDS = ("probe", "predict", "serve-sim", "sweep", "report", "gate", "calibrate")


def best_of(args: list[str], runs: int = 5) -> float:
    """The fastest of ``runs`` wall times of ``python -m specbench ARGS``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "specbench", *args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    reference = best_of(["--version"])
    print(f"specbench --version: {reference:.3f} s (reference)")
    for name in COMMANDS:
        seconds = best_of([name, "-h"])
        print(f"specbench {name} -h: {seconds:.3f} s, {seconds / reference:.2f}x --version")


if __name__ == "__main__":
    main()
