"""Changing load, after the search: ``--load ramp:1,8,32,8,1`` and ``--adaptive``.

Each candidate runs the whole ramp on one server (phases of closed-loop load at each
concurrency in turn, the same prompts for every candidate): no speculation, the best
single static configuration (the verdict's pick for mixed load), and with
``--adaptive`` the engine's own default adaptive config (SGLang's built-in tiers; vLLM
has none) and the one specbench writes from this run's per-load results
(``specbench export``'s). The ramp is run ``RAMP_REPEATS`` times with other acceptance
draws, and the answer is the ratio of output tokens over the whole ramp (tokens over the
time the phases took) with its 95% interval over the repeats, paired by repeat.

The simulator (a server per repeat, each with its own draws) and launched engines (one
launch per candidate, the ramp run again on it) open the servers through
``seeded_session``; an attached endpoint cannot. The run directory keeps it in
``ramp.json`` (``specbench.rundir.ramp``).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from specbench.errors import BadInputError
from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.backend import LoadSpec, Session
from specbench.harness.engine import Deployment
from specbench.harness.metrics import summarize
from specbench.harness.sim_backend import SimBackend
from specbench.rundir.ramp import RAMP_FILE, ramp_answer
from specbench.rundir.records import RequestRecord
from specbench.schema import write_json, write_text_atomic
from specbench.spec_config import SpecConfig
from specbench.sweeps.context import SweepContext
from specbench.verdict.adaptive_tiers import adaptive_tiers

#: Times the ramp is run per candidate (each with its own acceptance draws).
RAMP_REPEATS = 5
#: Two-sided 95% Student t quantiles by degrees of freedom.
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


@dataclass(frozen=True)
class RampCandidate:
    """What one server runs over the ramp."""

    role: str  # "baseline" | "static" | "engine-default" | "written"
    label: str
    config: SpecConfig | None
    adaptive: AdaptiveSpec | None = None


def check_ramp_backend(ctx: SweepContext) -> None:
    """``--load ramp`` and ``--adaptive`` launch their own servers: the simulator or a
    launching backend, never an attached endpoint (refused before anything runs)."""
    if not (ctx.options.ramp or ctx.options.adaptive):
        return
    if not hasattr(ctx.backend, "seeded_session") or getattr(ctx.backend, "attached", False):
        raise BadInputError(
            "--load ramp and --adaptive launch a server per candidate: not with --endpoint "
            "(`specbench export` writes the engine's adaptive config from this run instead)"
        )


def ramp_phases(ctx: SweepContext) -> tuple[int, ...]:
    return ctx.options.ramp or ctx.concurrencies


def candidates(ctx: SweepContext, results: dict[str, Any]) -> list[RampCandidate]:
    """No speculation, the best static configuration, and with --adaptive the engine's
    default and the written adaptive configs."""
    out = [RampCandidate("baseline", "no speculation", None)]
    verdict = results.get("verdict") or {}
    picked = verdict.get("config")
    if isinstance(picked, dict):
        static = SpecConfig.from_fields(picked)
        out.append(RampCandidate("static", f"best static {static.key}", static))
    fmt = ctx.engine.adaptive
    if not ctx.options.adaptive or fmt is None:
        return out
    tiers = adaptive_tiers(ctx.run_dir.read_trials(), ctx.concurrencies)
    auto = ctx.target.auto_config
    if fmt.default_body is not None:
        start = auto.num_steps if auto.topk == 1 else max(1, tiers[0].pick)
        spec = AdaptiveSpec.of(fmt, fmt.default_body, initial_steps=start, name="engine default")
        out.append(
            RampCandidate(
                "engine-default",
                f"{fmt.engine} default adaptive",
                spec.launch_config,
                spec,
            )
        )
    if any(t.speculates for t in tiers):
        path = ctx.run_dir.path / fmt.file_name
        deployment = Deployment.of(ctx.target, max_batch=max(ctx.concurrencies))
        body, _ = fmt.build(ctx.engine, deployment, tiers, str(path))
        fmt.check(body, str(path))
        write_text_atomic(path, json.dumps(body, indent=2) + "\n")  # what export writes
        start = max(1, tiers[0].pick)
        spec = AdaptiveSpec.of(fmt, body, initial_steps=start, name=str(path))
        out.append(RampCandidate("written", "written adaptive", spec.launch_config, spec))
    return out


def _run_ramp(
    ctx: SweepContext, session: Session, phases: Sequence[int]
) -> list[list[RequestRecord]]:
    """Every phase on ``session`` in turn; a warm-up before the first only (the server
    keeps what it learned from one phase to the next)."""
    out: list[list[RequestRecord]] = []
    for index, concurrency in enumerate(phases):
        load = LoadSpec(
            concurrency=concurrency,
            prompts=ctx.prompts,
            max_new_tokens=ctx.options.max_new_tokens,
            warmup_requests=2 if index == 0 else 0,
            request_timeout_s=ctx.options.request_timeout_s,
            num_requests=max(len(ctx.prompts), 2 * concurrency),
        )
        out.append(session.run(load))
    return out


def _open(ctx: SweepContext, cand: RampCandidate, seed: int) -> AbstractContextManager[Session]:
    log = ctx.run_dir.logs_dir / f"ramp-{cand.role}.log"
    backend: Any = ctx.backend  # check_ramp_backend: it has seeded_session
    opened: AbstractContextManager[Session] = backend.seeded_session(
        cand.config, cand.adaptive, log_path=log, seed=seed
    )
    return opened


def _repeat_row(
    ctx: SweepContext, session: Session, phases: Sequence[int], repeat: int, seed: int
) -> dict[str, Any]:
    per_phase = _run_ramp(ctx, session, phases)
    phase_rows = [_phase_row(c, recs) for c, recs in zip(phases, per_phase, strict=True)]
    tokens = sum(p["completion_tokens"] for p in phase_rows)
    span = sum(p["span_s"] for p in phase_rows)
    return {
        "repeat": repeat,
        "seed": seed,
        "phases": phase_rows,
        "output_tokens_per_s": tokens / span,
    }


def _phase_row(concurrency: int, records: Sequence[RequestRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    spans = [
        (r.started_at, r.started_at + r.e2e_ms / 1000.0)
        for r in ok
        if r.started_at is not None and r.e2e_ms is not None
    ]
    span_s = max(b for _, b in spans) - min(a for a, _ in spans) if spans else math.nan
    metrics = summarize(records)
    return {
        "concurrency": concurrency,
        "requests": len(records),
        "errors": len(records) - len(ok),
        "completion_tokens": sum(r.completion_tokens for r in ok),
        "span_s": span_s,
        "output_tokens_per_s": metrics.output_tokens_per_s,
        "tau": None if math.isnan(metrics.tau) else metrics.tau,
    }


def _interval(values: Sequence[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = _T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def measure_ramp(ctx: SweepContext, results: dict[str, Any]) -> dict[str, Any]:
    """Run every candidate over the ramp ``RAMP_REPEATS`` times and write ramp.json."""
    phases = ramp_phases(ctx)
    chosen = candidates(ctx, results)
    ctx.progress.phase(f"ramp {'-'.join(map(str, phases))}: {len(chosen)} servers x {RAMP_REPEATS}")
    rows: dict[str, list[dict[str, Any]]] = {c.role: [] for c in chosen}
    seeds = [ctx.options.seed + 7919 * (repeat + 1) for repeat in range(RAMP_REPEATS)]
    if isinstance(ctx.backend, SimBackend):
        # A simulated server per repeat, each with its own acceptance draws.
        for repeat, seed in enumerate(seeds):
            for cand in chosen:
                with _open(ctx, cand, seed) as session:
                    rows[cand.role].append(_repeat_row(ctx, session, phases, repeat, seed))
    else:
        # A real server draws its own acceptance: one launch per candidate, the ramp
        # run again on it (what it learned carries over, as in service).
        for cand in chosen:
            with _open(ctx, cand, seeds[0]) as session:
                for repeat, seed in enumerate(seeds):
                    rows[cand.role].append(_repeat_row(ctx, session, phases, repeat, seed))
    section = _section(ctx, phases, chosen, rows)
    write_json(ctx.run_dir.path / RAMP_FILE, section)
    ctx.notes.append(section["answer"])
    return section


def _section(
    ctx: SweepContext,
    phases: Sequence[int],
    chosen: Sequence[RampCandidate],
    rows: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    base = rows["baseline"]
    entries = []
    for cand in chosen:
        runs = rows[cand.role]
        ratio = [
            r["output_tokens_per_s"] / b["output_tokens_per_s"]
            for r, b in zip(runs, base, strict=True)
        ]
        mean, low, high = _interval(ratio)
        entries.append(
            {
                "role": cand.role,
                "label": cand.label,
                "config": None if cand.config is None else cand.config.key,
                "adaptive": None if cand.adaptive is None else dict(cand.adaptive.body),
                "output_tokens_per_s": statistics.fmean(r["output_tokens_per_s"] for r in runs),
                "speedup": mean,
                "speedup_ci": [low, high],
                "phases": _mean_phases(runs),
                "predicted": _predicted(ctx, cand, phases),
                "runs": runs,
            }
        )
    versus: dict[str, list[float]] = {}
    written = rows.get("written")
    for role in ("static", "engine-default"):
        if written is not None and role in rows:
            ratio = [
                w["output_tokens_per_s"] / o["output_tokens_per_s"]
                for w, o in zip(written, rows[role], strict=True)
            ]
            versus[role] = list(_interval(ratio))
    body: dict[str, Any] = {
        "kind": "specbench.ramp",
        "simulated": ctx.simulated,
        "phases": list(phases),
        "repeats": RAMP_REPEATS,
        "candidates": entries,
        "written_versus": versus,
    }
    body["answer"] = ramp_answer(body)
    return body


def _predicted(
    ctx: SweepContext, cand: RampCandidate, phases: Sequence[int]
) -> list[dict[str, Any]]:
    """The prior model's account of each phase: the chain the candidate runs at that
    batch size (an adaptive config's settled choice on the model's acceptance) and its
    predicted speedup over no speculation there."""
    model = ctx.prior
    out = []
    for concurrency in phases:
        chain = cand.config
        if cand.adaptive is not None:
            chain = cand.adaptive.settled_config(concurrency, lambda c: model.expected_tau(c) - 1.0)
        speedup = 1.0 if chain is None else model.predict(chain, concurrency).speedup
        out.append(
            {
                "concurrency": concurrency,
                "config": None if chain is None else chain.key,
                "speedup": speedup,
            }
        )
    return out


def _mean_phases(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per phase: the mean tokens/s and tau over the repeats."""
    out = []
    for index, first in enumerate(runs[0]["phases"]):
        values = [r["phases"][index] for r in runs]
        taus = [v["tau"] for v in values if v["tau"] is not None]
        out.append(
            {
                "concurrency": first["concurrency"],
                "output_tokens_per_s": statistics.fmean(v["output_tokens_per_s"] for v in values),
                "tau": statistics.fmean(taus) if taus else None,
            }
        )
    return out


__all__ = ["RAMP_REPEATS", "RampCandidate", "check_ramp_backend", "measure_ramp"]
