"""CPU cost of a simulated closed-loop run (target: 60 requests x 256 tokens << 100 ms).

Run on demand: ``python benchmarks/harness_core_sim_speed.py``. Prints the CPU time of a
60-request run per concurrency, cold (the model's one-off acceptance Monte-Carlo
included) and warm, and its ratio against two references measured in the same run:
the 100 ms budget, and the bare cost of calling the model's decode_step_s once per
scheduler step (what any simulator on this model must at least pay without caching).
All timings are of SIMULATED runs; nothing here touches a GPU.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from specbench.harness.backend import LoadSpec
from specbench.harness.prompts import builtin_prompts
from specbench.harness.sim_backend import SimBackend
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.spec_config import SpecConfig

BUDGET_S = 0.100
REPEATS = 5


def cpu_time_of_run(
    backend: SimBackend, config: SpecConfig | None, concurrency: int, log: Path
) -> tuple[float, int]:
    load = LoadSpec(concurrency=concurrency, prompts=builtin_prompts()[:60], max_new_tokens=256)
    with backend.session(config, log_path=log) as session:
        start = time.process_time()
        records = session.run(load)
        elapsed = time.process_time() - start
    steps = sum(r.spec_verify_ct or r.completion_tokens - 1 for r in records)
    return elapsed, steps


def main() -> None:
    log = Path(tempfile.mkdtemp()) / "sim.log"
    print("SIMULATED runs: 60 requests x 256 tokens, minimax-m2.7 on h200-nvlink")
    print(
        f"{'config':>9} {'conc':>4} {'cold ms':>8} {'warm ms':>8} {'/budget':>8} {'/model-calls':>12}"
    )
    for config in (None, SpecConfig(3, 4, 8)):
        for concurrency in (1, 32):
            model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink"))
            backend = SimBackend(model, seed=0)
            cold, _ = cpu_time_of_run(backend, config, concurrency, log)
            warm = min(
                cpu_time_of_run(backend, config, concurrency, log)[0] for _ in range(REPEATS)
            )
            # reference: one uncached decode_step_s call per request-step
            _, steps = cpu_time_of_run(backend, config, concurrency, log)
            start = time.process_time()
            for _ in range(steps // concurrency):
                model.decode_step_s(config, concurrency)
            reference = time.process_time() - start
            key = "baseline" if config is None else config.key
            print(
                f"{key:>9} {concurrency:>4} {cold * 1e3:8.1f} {warm * 1e3:8.1f} "
                f"{warm / BUDGET_S:8.2f} {warm / reference if reference > 0 else float('nan'):12.2f}"
            )


if __name__ == "__main__":
    main()
