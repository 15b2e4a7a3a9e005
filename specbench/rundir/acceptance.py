"""Per-position acceptance files of a run directory (``acceptance/*.json``).

One small JSON per speculative trial and concurrency: tau with the source it came from
(``tau_source``: per-request counters or the engine's ``/metrics`` deltas) and the
share of verify steps that accepted the draft at each chain position. A chain
acceptance model is fitted to these numbers, so they are kept beside the requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specbench.errors import FileFormatError
from specbench.rundir.layout import RunDirectory
from specbench.schema import read_json

ACCEPTANCE_KIND = "specbench.acceptance"
ACCEPTANCE_DIR = "acceptance"


def acceptance_path(run_dir: RunDirectory, trial_number: int, key: str, concurrency: int) -> Path:
    return run_dir.path / ACCEPTANCE_DIR / f"trial-{trial_number:04d}-{key}-c{concurrency}.json"


def read_acceptance(run_dir: RunDirectory) -> list[dict[str, Any]]:
    """Every acceptance file of the run, by trial number then concurrency."""
    folder = run_dir.path / ACCEPTANCE_DIR
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("trial-*.json")) if folder.is_dir() else []:
        data = read_json(path, kind="acceptance file")
        if data.get("kind") != ACCEPTANCE_KIND:
            raise FileFormatError(path, f"expected kind {ACCEPTANCE_KIND!r}", field="kind")
        out.append(data)
    return sorted(out, key=lambda d: (int(d["trial_number"]), int(d["concurrency"])))


def acceptance_summary(run_dir: RunDirectory) -> list[dict[str, Any]]:
    """The headline of each file, for results.json (tau, its source, per position)."""
    keys = ("trial_number", "config_key", "concurrency", "tau_source", "tau")
    out = []
    for data in read_acceptance(run_dir):
        row = {k: data.get(k) for k in keys}
        row["tau_per_request"] = (data.get("per_request") or {}).get("tau")
        row["tau_counters"] = (data.get("counters") or {}).get("tau")
        row["position_acceptance"] = data.get("position_acceptance")
        out.append(row)
    return out


def pooled_chain_counts(run_dir: RunDirectory) -> dict[str, dict[str, Any]]:
    """Per chain configuration (topk 1): the engine's drafts and accepted tokens per
    position, summed over its concurrencies, with the measured tau (1 + accepted /
    drafts). Loads without per-position counters use their acceptance histogram."""
    out: dict[str, dict[str, Any]] = {}
    for data in read_acceptance(run_dir):
        if int(data.get("topk") or 0) != 1:
            continue
        counters = data.get("counters") or {}
        per_position = [float(v) for v in counters.get("accepted_per_position") or []]
        drafts = float(counters.get("drafts") or 0.0)
        histogram = data.get("histogram") or []
        if not drafts and histogram:  # steps that accepted at least i + 1 drafts
            drafts = float(sum(histogram))
            per_position = [float(sum(histogram[i + 1 :])) for i in range(len(histogram) - 1)]
        if not drafts:
            continue
        entry = out.setdefault(
            str(data["config_key"]),
            {"k": int(data["num_steps"]), "drafts": 0.0, "accepted_per_position": []},
        )
        pooled = entry["accepted_per_position"]
        pooled.extend([0.0] * (len(per_position) - len(pooled)))
        for i, value in enumerate(per_position):
            pooled[i] += value
        entry["drafts"] += drafts
    for entry in out.values():
        entry["tau"] = 1.0 + sum(entry["accepted_per_position"]) / entry["drafts"]
    return out


def describe_tau_agreement(rows: list[dict[str, Any]]) -> str | None:
    """How far specbench's tau (per-request) is from the engine's own counters, over
    the loads that had both; None when no load had both."""
    pairs = [
        (float(r["tau_per_request"]), float(r["tau_counters"]))
        for r in rows
        if r.get("tau_per_request") is not None and r.get("tau_counters")
    ]
    if not pairs:
        return None
    worst = max(abs(a - b) / b for a, b in pairs)
    return (
        f"tau agreement: specbench's per-request tau is within {100 * worst:.2f}% of the "
        f"engine's /metrics counters (1 + accepted / drafts) over {len(pairs)} load(s)"
    )


__all__ = [
    "ACCEPTANCE_DIR",
    "ACCEPTANCE_KIND",
    "acceptance_path",
    "acceptance_summary",
    "describe_tau_agreement",
    "pooled_chain_counts",
    "read_acceptance",
]
