"""What a trial is compared against, kept in the study so every worker sees the same.

* The baseline's per-prompt sums (tokens, latency) at each concurrency: enough for the
  paired bootstrap interval of every later speedup (``specbench.harness.window``), small
  (one pair of numbers per prompt), and stored next to the baseline rows so a resumed
  run or a second worker computes the same intervals.
* The speedup intervals of the configurations measured so far at each concurrency:
  what the pruning rule (``specbench.sweeps.budget.prune_reason``) compares against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import optuna

from specbench.harness.window import RequestSample
from specbench.rundir.layout import STATE_COMPLETE
from specbench.sweeps.budget import Interval
from specbench.sweeps.search import ATTR_ROWS

#: Study user attribute: {concurrency: [[prompt_id, tokens, latency_ms], ...]}.
STUDY_BASELINE_SAMPLES = "baseline_samples"


def prompt_sums(samples: Iterable[RequestSample]) -> list[list[Any]]:
    """Per-prompt sums of tokens and latency, as JSON."""
    sums: dict[str, list[float]] = {}
    for sample in samples:
        entry = sums.setdefault(sample.prompt_id, [0.0, 0.0])
        entry[0] += sample.completion_tokens
        entry[1] += sample.latency_ms
    return [[pid, int(tokens), latency] for pid, (tokens, latency) in sorted(sums.items())]


def store_baseline_samples(
    study: optuna.Study, samples: Mapping[int, Sequence[RequestSample]]
) -> None:
    """Add the baseline's samples; ones already stored (another worker's) win."""
    stored = dict(study.user_attrs.get(STUDY_BASELINE_SAMPLES) or {})
    for concurrency, values in samples.items():
        stored.setdefault(str(concurrency), prompt_sums(values))
    study.set_user_attr(STUDY_BASELINE_SAMPLES, stored)


def baseline_samples(study: optuna.Study) -> dict[int, list[RequestSample]]:
    """The stored per-prompt baseline samples by concurrency (empty when none)."""
    stored = study.user_attrs.get(STUDY_BASELINE_SAMPLES) or {}
    out: dict[int, list[RequestSample]] = {}
    if not isinstance(stored, dict):
        return out
    for key, entries in stored.items():
        try:
            out[int(key)] = [RequestSample(str(p), int(t), float(lat)) for p, t, lat in entries]
        except (TypeError, ValueError):
            continue
    return out


def _interval(row: Mapping[str, Any]) -> Interval | None:
    values = [row.get(k) for k in ("speedup", "speedup_ci_low", "speedup_ci_high")]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    return Interval(*(float(v) for v in values))  # type: ignore[arg-type]


def measured_intervals(study: optuna.Study, concurrency: int) -> dict[str, Interval]:
    """Speedup intervals at ``concurrency`` of every configuration measured so far."""
    out: dict[str, Interval] = {}
    for trial in study.get_trials(deepcopy=False):
        for row in trial.user_attrs.get(ATTR_ROWS) or []:
            if not isinstance(row, dict) or row.get("concurrency") != concurrency:
                continue
            if row.get("state") != STATE_COMPLETE:
                continue
            interval = _interval(row)
            if interval is not None:
                out[str(row.get("config_key"))] = interval
    return out


__all__ = [
    "STUDY_BASELINE_SAMPLES",
    "baseline_samples",
    "measured_intervals",
    "prompt_sums",
    "store_baseline_samples",
]
