"""Build the golden run directories the gate tests compare (run: python make_golden.py).

The runs are synthetic but shaped like real ones: per-request tau varies by prompt
domain (code drafts better than chat), completion lengths hit the token budget most of
the time, per-stream speed follows tau, and concurrency 8 is slower per stream than 1.
Samples come from numpy with fixed seeds, so re-running this script reproduces the
committed files byte for byte (tests/test_gate_golden.py checks that). Every number is
SIMULATED and the manifests say so.

Runs written next to this script:

    base/      the reference: baseline + 3-4-8 at concurrency 1 and 8, 24 prompts
    noise/     same workload, other seed, tau and speed 2% lower: must pass
    drop10/    same workload, 3-4-8's tau (and so its speed) 10% lower: must fail;
               also has 2-1-3 at concurrency 1 that base lacks ("not compared")
    few-a/     3 prompts only (another workload fingerprint than base)
    few-b/     like few-a with tau 15% lower: too few samples to call it significant
    baseline.json   `specbench gate --save-baseline` of base/
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specbench.gate.inputs import baseline_payload, load_run_side
from specbench.rundir.layout import Manifest, RunDirectory, WorkloadFingerprint
from specbench.rundir.records import RequestRecord, write_records
from specbench.rundir.trials import speedup
from specbench.schema import write_json
from specbench.spec_config import SpecConfig

HERE = Path(__file__).resolve().parent
CREATED_AT = "2026-11-29T00:00:00+00:00"
MAX_NEW_TOKENS = 256

#: Mean per-request tau by configuration and domain (the calibration in
#: specbench/model/data/targets/minimax-m2.7.toml: 2.3-3.05 at 3-4-8).
TAU_BY_DOMAIN: dict[str, dict[str, float]] = {
    "3-4-8": {"chat": 2.35, "code": 2.85, "math": 2.6},
    "2-1-3": {"chat": 1.95, "code": 2.2, "math": 2.05},
}
#: Per-stream speedup at the mean tau, by configuration and concurrency.
SPEEDUP: dict[str, dict[int, float]] = {
    "3-4-8": {1: 1.95, 8: 1.35},
    "2-1-3": {1: 1.6, 8: 1.3},
}
#: No-speculation per-stream decode speed (tokens/s) and TTFT (ms) by concurrency.
BASE_TOKENS_PER_S = {1: 72.0, 8: 58.0}
TTFT_MS = {1: 60.0, 8: 180.0}


@dataclass(frozen=True)
class RunSpec:
    name: str
    seed: int
    prompts: int  # per domain
    configs: Sequence[tuple[str, int]]  # (config_key, concurrency), baseline included
    tau_factor: dict[str, float]  # per config key; 1.0 when absent
    speed_factor: float = 1.0  # on every stream, baseline included


def prompt_ids(per_domain: int) -> list[tuple[str, str]]:
    return [(f"{d}-{i:02d}", d) for d in ("chat", "code", "math") for i in range(per_domain)]


def fingerprint(per_domain: int) -> WorkloadFingerprint:
    ids = "\n".join(pid for pid, _ in prompt_ids(per_domain))
    return WorkloadFingerprint(
        target_model="MiniMaxAI/MiniMax-M2.7",
        draft_model="Lorbus/MiniMax-M2.7-EAGLE3",
        algorithm="EAGLE3",
        prompts_sha256=hashlib.sha256(ids.encode()).hexdigest(),
        num_prompts=3 * per_domain,
        max_new_tokens=MAX_NEW_TOKENS,
    )


def make_records(
    spec: RunSpec, key: str, concurrency: int, trial: int, rng: np.random.Generator
) -> list[RequestRecord]:
    records = []
    clock = 1_800_000_000.0 + 1000.0 * trial + 100.0 * concurrency
    for pid, domain in prompt_ids(spec.prompts):
        completion = (
            MAX_NEW_TOKENS if rng.random() < 0.8 else int(rng.integers(120, MAX_NEW_TOKENS))
        )
        base_speed = BASE_TOKENS_PER_S[concurrency] * spec.speed_factor
        if key == "baseline":
            verify: int | None = None
            speed = base_speed * float(rng.lognormal(0.0, 0.03))
        else:
            mean_tau = float(np.mean(list(TAU_BY_DOMAIN[key].values())))
            tau = TAU_BY_DOMAIN[key][domain] * spec.tau_factor.get(key, 1.0)
            tau = float(np.clip(tau + rng.normal(0.0, 0.15), 1.05, 4.0))
            verify = max(1, round(completion / tau))
            actual_tau = completion / verify
            speed = base_speed * SPEEDUP[key][concurrency] * actual_tau / mean_tau
            speed *= float(rng.lognormal(0.0, 0.03))
        ttft = TTFT_MS[concurrency] * float(rng.lognormal(0.0, 0.1))
        e2e = ttft + (completion - 1) / speed * 1000.0
        records.append(
            RequestRecord(
                prompt_id=pid,
                domain=domain,
                prompt_tokens=int(rng.integers(40, 400)),
                completion_tokens=completion,
                spec_verify_ct=verify,
                ttft_ms=round(ttft, 3),
                e2e_ms=round(e2e, 3),
                trial_number=trial,
                config_key=key,
                concurrency=concurrency,
                simulated=True,
                started_at=round(clock, 3),
            )
        )
        clock += 0.25
    return records


def trial_row(
    key: str,
    concurrency: int,
    trial: int,
    records: list[RequestRecord],
    base: dict[str, Any] | None,
) -> dict[str, Any]:
    completion = sum(r.completion_tokens for r in records)
    speeds = np.array([r.output_tokens_per_s for r in records], dtype=float)
    # Streams overlap: aggregate throughput ~ concurrency x mean stream speed, a bit less.
    aggregate = float(concurrency * speeds.mean() * (0.97 if concurrency > 1 else 1.0))
    row: dict[str, Any] = {
        "trial_number": trial,
        "config_key": key,
        "concurrency": concurrency,
        "state": "complete",
        "source": "baseline" if key == "baseline" else "fixed",
        "output_tokens_per_s": round(aggregate, 4),
        "per_stream_tokens_per_s": round(float(speeds.mean()), 4),
        "ttft_ms_p50": round(float(np.median([r.ttft_ms for r in records])), 3),
        "e2e_ms_p50": round(float(np.median([r.e2e_ms for r in records])), 3),
        "num_requests": len(records),
        "num_errors": 0,
        "completion_tokens": completion,
        "noisy": False,
        "simulated": True,
        "worker": "golden:0",
        "duration_s": 1.0,
    }
    if key != "baseline":
        config = SpecConfig.parse(key)
        verify = sum(r.spec_verify_ct or 0 for r in records)
        taus = np.array([r.tau for r in records], dtype=float)
        row.update(
            **config.as_dict(),
            spec_verify_ct=verify,
            tau=round(completion / verify, 4),
            tau_p10=round(float(np.percentile(taus, 10)), 4),
            tau_p50=round(float(np.percentile(taus, 50)), 4),
            tau_p90=round(float(np.percentile(taus, 90)), 4),
        )
        if base is not None:
            row["speedup"] = round(speedup(aggregate, base["output_tokens_per_s"]), 4)
    return row


def write_run(spec: RunSpec, root: Path) -> Path:
    rng = np.random.default_rng(spec.seed)
    run = RunDirectory(root / spec.name)
    run.path.mkdir(parents=True, exist_ok=True)
    run.requests_path.unlink(missing_ok=True)
    concurrencies = sorted({c for _, c in spec.configs})
    manifest = Manifest(
        target="minimax-m2.7",
        hardware={
            "name": "h200-nvlink",
            "interconnect_class": "nvlink",
            "tp": 4,
            "source": "profile",
        },
        backend="sim",
        simulated=True,
        workload=fingerprint(spec.prompts),
        concurrencies=concurrencies,
        strategy="fixed",
        specbench_version="0.1.0",
        command=["specbench", "sweep", "--strategy", "fixed", "(golden: make_golden.py)"],
        created_at=CREATED_AT,
        seed=spec.seed,
        extra={"generator": "tests/data/golden/make_golden.py"},
    )
    run.write_manifest(manifest)
    rows: list[dict[str, Any]] = []
    base_rows: dict[int, dict[str, Any]] = {}
    trial = -1
    # Baselines first: speedup needs them.
    ordered = sorted(spec.configs, key=lambda kc: (kc[0] != "baseline", kc[0], kc[1]))
    for key, concurrency in ordered:
        number = -1 if key == "baseline" else (trial := trial + 1)
        records = make_records(spec, key, concurrency, number, rng)
        write_records(run.requests_path, records, compact=True)
        row = trial_row(key, concurrency, number, records, base_rows.get(concurrency))
        if key == "baseline":
            base_rows[concurrency] = row
        rows.append(row)
    frame = run.write_trials(rows)
    from specbench.rundir.layout import trials_to_records

    run.write_results(
        {
            "target": "minimax-m2.7",
            "hardware": manifest.hardware,
            "backend": "sim",
            "simulated": True,
            "concurrencies": concurrencies,
            "primary_concurrency": concurrencies[0],
            "baseline": [
                {
                    "concurrency": c,
                    "output_tokens_per_s": r["output_tokens_per_s"],
                    "per_stream_tokens_per_s": r["per_stream_tokens_per_s"],
                    "ttft_ms_p50": r["ttft_ms_p50"],
                    "itl_ms_p50": None,
                    "num_requests": r["num_requests"],
                }
                for c, r in sorted(base_rows.items())
            ],
            "best": None,
            "break_even": {},
            "verdict_reason": "golden run for the gate tests (SIMULATED)",
            "trials": trials_to_records(frame),
        }
    )
    return run.path


MAIN_CELLS = [("baseline", 1), ("3-4-8", 1), ("baseline", 8), ("3-4-8", 8)]

RUNS = [
    RunSpec("base", seed=1, prompts=8, configs=MAIN_CELLS, tau_factor={}),
    RunSpec(
        "noise",
        seed=2,
        prompts=8,
        configs=MAIN_CELLS,
        tau_factor={"3-4-8": 0.98},
        speed_factor=0.98,
    ),
    RunSpec(
        "drop10", seed=3, prompts=8, configs=[*MAIN_CELLS, ("2-1-3", 1)], tau_factor={"3-4-8": 0.90}
    ),
    RunSpec("few-a", seed=4, prompts=1, configs=MAIN_CELLS, tau_factor={}),
    RunSpec("few-b", seed=5, prompts=1, configs=MAIN_CELLS, tau_factor={"3-4-8": 0.85}),
]


def main(root: Path = HERE) -> None:
    for spec in RUNS:
        write_run(spec, root)
    payload = baseline_payload(load_run_side(root / "base"))
    payload["created_at"] = CREATED_AT
    payload["source"] = "base"
    write_json(root / "baseline.json", payload)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
