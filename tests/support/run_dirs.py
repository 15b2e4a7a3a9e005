"""A realistic run directory for the report tests and benchmark, without a sweep.

The sweep is built in parallel and is slow to run, so the report is tested against run
directories written here through the same RunDirectory / write_records contract the
sweep uses. The numbers follow the shape of real EAGLE3 results (tau grows with the draft
tree and saturates; speedup shrinks with concurrency) so that plots and verdicts are
exercised on plausible data, but every value is synthetic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from specbench.report.data import read_run, run_decision
from specbench.rundir.layout import (
    Manifest,
    RunDirectory,
    WorkloadFingerprint,
    normalise_trials,
    trials_to_records,
)
from specbench.rundir.records import RequestRecord, write_records
from specbench.spec_config import SpecConfig, valid_configs

XSS = "<script>alert(1)</script>"
DOMAINS = ("chat", "code", "math")
_DOMAIN_TAU = {"chat": 0.88, "code": 1.0, "math": 1.12}

#: Scenario -> speedup multiplier per concurrency, applied to a config's single-stream gain.
SCENARIOS: dict[str, dict[int, float]] = {
    # pays at 1 and 8, stops paying before 32
    "crosses": {1: 1.0, 8: 0.6, 32: 0.35},
    # host-staged: nothing beats the baseline anywhere
    "never-pays": {1: 0.42, 8: 0.38, 32: 0.3},
    # pays at every measured concurrency
    "pays-everywhere": {1: 1.0, 8: 0.9, 32: 0.8},
}


def expected_tau(config: SpecConfig) -> float:
    """Saturating acceptance: deeper and wider trees accept more, with diminishing returns."""
    depth_gain = 1.0 - 0.55**config.num_steps
    width_gain = 1.0 + 0.12 * math.log2(config.topk)
    budget = min(1.0, 0.55 + 0.06 * config.num_draft_tokens)
    return 1.0 + 1.9 * depth_gain * width_gain * budget


def single_stream_speedup(config: SpecConfig) -> float:
    """tau over a step cost that grows with draft depth and verified tokens."""
    cost = 1.0 + 0.06 * config.num_steps + 0.012 * config.num_draft_tokens
    return expected_tau(config) / cost


def default_configs(count: int) -> list[SpecConfig]:
    """A spread of valid configurations over steps x topk (deterministic)."""
    pool = valid_configs(num_steps=range(1, 9), topks=(1, 2, 4, 8), draft_tokens=range(2, 33))
    rng = random.Random(1234)
    rng.shuffle(pool)
    preferred = [SpecConfig(3, 4, 8), SpecConfig(3, 1, 4), SpecConfig(5, 4, 8)]
    chosen = [c for c in preferred if c in pool][:count]
    for config in pool:
        if len(chosen) >= count:
            break
        if config not in chosen:
            chosen.append(config)
    return chosen


def write_run(
    path: Path,
    *,
    scenario: str = "crosses",
    num_configs: int = 12,
    configs: Sequence[SpecConfig] | None = None,
    concurrencies: Sequence[int] = (1, 8, 32),
    failed: int = 2,
    requests_per_trial: int = 6,
    itl_points: int = 0,
    simulated: bool = True,
    hardware_class: str = "nvlink",
    with_probe: bool = True,
    with_baseline: bool = True,
    predicted: bool = True,
    hostile_text: str = "",
    target: str = "minimax-m2.7",
    seed: int = 0,
) -> Path:
    """Write manifest.json, results.json, trials.csv and requests.jsonl under ``path``.

    ``itl_points`` inter-token latencies per request make requests.jsonl as large as a
    real sweep's (255 for 256 new tokens). ``hostile_text`` is put into the prompt ids, an error message and a log tail, to
    check that every string that came from a server or a dataset is escaped.
    """
    rng = random.Random(seed)
    factors = SCENARIOS[scenario]
    chosen = list(configs) if configs is not None else default_configs(num_configs)
    run = RunDirectory(path)
    hardware: dict[str, Any] = {
        "name": "h200-nvlink" if hardware_class == "nvlink" else "pcie-host-staged",
        "interconnect_class": hardware_class,
        "tp": 4,
        "source": "probe" if with_probe else "profile",
    }
    if with_probe:
        alpha = 6.0 if hardware_class == "nvlink" else 28.0
        bw = 150.0 if hardware_class == "nvlink" else 9.0
        hardware["probe"] = {
            "interconnect": {
                "class": hardware_class,
                "evidence": [
                    "4 of 8 GPUs considered (NVIDIA H200).",
                    "GPU0-GPU1: NVLink 4.0 x18, P2P read/write OK."
                    if hardware_class == "nvlink"
                    else "GPU0-GPU2: PCIe across host bridges (SYS), P2P not supported.",
                    f"Evidence from a hostile probe: {hostile_text}" if hostile_text else "",
                ],
            },
            "allreduce": [
                {
                    "backend": "nccl",
                    "mode": "default",
                    "world_size": 4,
                    "bytes": 2**k,
                    "latency_us": alpha + 2**k / (bw * 1e3),
                }
                for k in range(10, 29, 2)
            ],
        }
    manifest = Manifest(
        target=target,
        hardware=hardware,
        backend="sim" if simulated else "sglang",
        simulated=simulated,
        workload=WorkloadFingerprint(
            target_model="MiniMaxAI/MiniMax-M2.7",
            draft_model="Lorbus/MiniMax-M2.7-EAGLE3",
            algorithm="EAGLE3",
            prompts_sha256="0" * 64,
            num_prompts=60,
            max_new_tokens=256,
        ),
        concurrencies=list(concurrencies),
        strategy="tpe",
        specbench_version="0.1.0",
        command=["specbench", "sweep", "--target", target],
        created_at="2026-11-29T02:00:00Z",
        seed=seed,
    )
    run.write_manifest(manifest)

    base_tps = {c: 60.0 * c / (1.0 + 0.02 * c) for c in concurrencies}
    rows: list[dict[str, Any]] = []
    records: list[RequestRecord] = []
    baseline_summary: list[dict[str, Any]] = []
    if with_baseline:
        for c in concurrencies:
            rows.append(
                _row(
                    -1,
                    None,
                    c,
                    "complete",
                    "baseline",
                    simulated,
                    tau=None,
                    speedup=None,
                    tps=base_tps[c],
                    rng=rng,
                )
            )
            baseline_summary.append(
                {
                    "concurrency": c,
                    "output_tokens_per_s": base_tps[c],
                    "per_stream_tokens_per_s": base_tps[c] / c,
                    "ttft_ms_p50": 80.0,
                    "itl_ms_p50": 1000.0 * c / base_tps[c],
                    "num_requests": requests_per_trial,
                }
            )
            records += _records(
                -1, "baseline", c, None, requests_per_trial, simulated, rng, "", itl_points
            )

    for number, config in enumerate(chosen):
        is_failed = number >= len(chosen) - failed
        source = "model-prior" if number == 0 else ("card" if number == 1 else "tpe")
        for c in concurrencies:
            if is_failed:
                rows.append(
                    _row(
                        number,
                        config,
                        c,
                        "failed",
                        source,
                        simulated,
                        tau=None,
                        speedup=None,
                        tps=None,
                        rng=rng,
                        error=f"server exited with code 1 during start-up {hostile_text}".strip(),
                        log_tail="Traceback (most recent call last):\n"
                        '  File "sglang/srt/speculative/eagle_worker.py", line 212\n'
                        f"RuntimeError: CUDA out of memory {hostile_text}\n",
                    )
                )
                continue
            tau = expected_tau(config) * rng.uniform(0.97, 1.03)
            gain = single_stream_speedup(config) * factors.get(c, factors[max(factors)])
            speedup = gain * rng.uniform(0.98, 1.02)
            rows.append(
                _row(
                    number,
                    config,
                    c,
                    "complete",
                    source,
                    simulated,
                    tau=tau,
                    speedup=speedup if with_baseline else None,
                    tps=base_tps[c] * speedup,
                    rng=rng,
                    predicted=predicted,
                )
            )
            records += _records(
                number,
                config.key,
                c,
                tau,
                requests_per_trial,
                simulated,
                rng,
                hostile_text,
                itl_points,
            )

    frame = normalise_trials(rows)
    run.write_trials(frame)
    write_records(run.requests_path, records, append=False)
    body: dict[str, Any] = {
        "target": target,
        "hardware": hardware,
        "backend": manifest.backend,
        "simulated": simulated,
        "concurrencies": list(concurrencies),
        "primary_concurrency": concurrencies[0],
        "baseline": baseline_summary,
        "trials": trials_to_records(frame),
    }
    run.write_results(body)
    # The decision a sweep stores: made from these rows by the same function the sweep
    # calls (the report's fallback for runs without one is that function).
    decision = run_decision(read_run(path))
    run.write_results({**body, **decision.to_json()})
    return path


def _row(
    number: int,
    config: SpecConfig | None,
    concurrency: int,
    state: str,
    source: str,
    simulated: bool,
    *,
    tau: float | None,
    speedup: float | None,
    tps: float | None,
    rng: random.Random,
    predicted: bool = False,
    error: str = "",
    log_tail: str = "",
) -> dict[str, Any]:
    done = state == "complete"
    row: dict[str, Any] = {
        "trial_number": number,
        "config_key": config.key if config is not None else "baseline",
        "num_steps": config.num_steps if config is not None else None,
        "topk": config.topk if config is not None else None,
        "num_draft_tokens": config.num_draft_tokens if config is not None else None,
        "concurrency": concurrency,
        "state": state,
        "source": source,
        "tau": tau,
        "tau_p10": tau * 0.8 if tau else None,
        "tau_p50": tau,
        "tau_p90": tau * 1.2 if tau else None,
        "output_tokens_per_s": tps,
        "per_stream_tokens_per_s": tps / concurrency if tps else None,
        "speedup": speedup,
        "ttft_ms_p50": 80.0 + concurrency if done else None,
        "ttft_ms_p90": 120.0 + concurrency if done else None,
        "ttft_ms_p99": 200.0 + concurrency if done else None,
        "itl_ms_p50": 1000.0 * concurrency / tps if tps else None,
        "itl_ms_p90": 1300.0 * concurrency / tps if tps else None,
        "itl_ms_p99": 1900.0 * concurrency / tps if tps else None,
        "e2e_ms_p50": 256 * 1000.0 * concurrency / tps if tps else None,
        "num_requests": 6 if done else 0,
        "num_errors": 0,
        "completion_tokens": 1536 if done else 0,
        "spec_verify_ct": int(1536 / tau) if tau else None,
        "noisy": rng.random() < 0.1 if done else False,
        "predicted_tau": None,
        "predicted_speedup": None,
        "simulated": simulated,
        "worker": "host:1234",
        "duration_s": 30.0 + rng.random() * 10,
        "error": error,
        "log_tail": log_tail,
    }
    if predicted and config is not None and tau is not None and speedup is not None:
        row["predicted_tau"] = expected_tau(config)
        row["predicted_speedup"] = speedup * rng.uniform(0.9, 1.1)
    return row


def _records(
    number: int,
    key: str,
    concurrency: int,
    tau: float | None,
    count: int,
    simulated: bool,
    rng: random.Random,
    hostile_text: str,
    itl_points: int = 0,
) -> list[RequestRecord]:
    out: list[RequestRecord] = []
    for i in range(count):
        domain = DOMAINS[i % len(DOMAINS)]
        completion = 256
        verify = None
        if tau is not None:
            verify = max(
                1, round(completion / (tau * _DOMAIN_TAU[domain] * rng.uniform(0.85, 1.15)))
            )
        out.append(
            RequestRecord(
                prompt_id=f"{domain}-{i:03d}{hostile_text}",
                domain=domain,
                prompt_tokens=200 + i,
                completion_tokens=completion,
                spec_verify_ct=verify,
                ttft_ms=80.0,
                e2e_ms=3000.0,
                itl_ms=[rng.uniform(5.0, 15.0) for _ in range(itl_points)],
                trial_number=number,
                config_key=key,
                concurrency=concurrency,
                simulated=simulated,
            )
        )
    return out
