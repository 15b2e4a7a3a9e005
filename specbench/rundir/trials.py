"""One trial row, typed, and the one speedup formula.

A trial row is one configuration at one concurrency (or the baseline at one
concurrency): the unit of trials.csv, of results.json "trials" and of what the sweep
stores in its Optuna study. Building rows through ``TrialRow`` keeps their field names
in one place (``TRIAL_COLUMNS`` in ``layout`` lists the same names, in file order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from specbench.spec_config import BASELINE_KEY, SpecConfig, params_text


def speedup(tokens_per_s: Any, baseline_tokens_per_s: Any) -> float | None:
    """Aggregate output tokens/s over the baseline's at the same concurrency and prompts.

    None when either side is missing, not finite, or the baseline is not positive: a
    speedup against nothing is not 0 or infinity, it is unknown.
    """
    if not isinstance(tokens_per_s, (int, float)) or not isinstance(
        baseline_tokens_per_s, (int, float)
    ):
        return None
    if not math.isfinite(tokens_per_s) or not math.isfinite(baseline_tokens_per_s):
        return None
    if baseline_tokens_per_s <= 0:
        return None
    return float(tokens_per_s) / float(baseline_tokens_per_s)


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities as None."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[str(key)] = value
    return out


@dataclass
class TrialRow:
    """One row of trials.csv (see ``layout.TRIAL_COLUMNS`` for what each field means).

    Metric fields stay None until measured; ``as_dict`` keeps only the fields that are
    set, so a row stored in the study and rebuilt later holds exactly what was measured.
    """

    trial_number: int
    config_key: str
    concurrency: int | None
    state: str = ""
    source: str = ""
    method: str | None = None
    method_params: str | None = None
    num_steps: int | None = None
    topk: int | None = None
    num_draft_tokens: int | None = None
    tau: float | None = None
    tau_p10: float | None = None
    tau_p50: float | None = None
    tau_p90: float | None = None
    tau_source: str | None = None
    tau_server: float | None = None
    output_tokens_per_s: float | None = None
    per_stream_tokens_per_s: float | None = None
    speedup: float | None = None
    speedup_ci_low: float | None = None
    speedup_ci_high: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p90: float | None = None
    ttft_ms_p99: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    itl_ms_p99: float | None = None
    e2e_ms_p50: float | None = None
    num_requests: int | None = None
    num_errors: int | None = None
    completion_tokens: int | None = None
    spec_verify_ct: int | None = None
    noisy: bool | None = None
    noise_reason: str | None = None
    remeasured: int | None = None
    prune_reason: str | None = None
    predicted_tau: float | None = None
    predicted_speedup: float | None = None
    simulated: bool | None = None
    worker: str | None = None
    duration_s: float | None = None
    error: str | None = None
    log_tail: str | None = None

    @classmethod
    def for_config(
        cls, trial_number: int, config: SpecConfig | None, concurrency: int | None, **values: Any
    ) -> TrialRow:
        """A row of ``config`` (None: the baseline) with its key and numbers filled in."""
        if config is None:
            return cls(trial_number, BASELINE_KEY, concurrency, **values)
        return cls(
            trial_number,
            config.key,
            concurrency,
            method=config.method,
            method_params=params_text(config) or None,
            num_steps=config.num_steps,
            topk=config.topk,
            num_draft_tokens=config.num_draft_tokens,
            **values,
        )

    def update(self, values: Mapping[str, Any]) -> None:
        """Set the fields named in ``values`` (metric rows from the harness)."""
        for key, value in values.items():
            if key not in _FIELDS:
                raise KeyError(f"{key!r} is not a trial column")
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the fields never set, in column order."""
        row = {k: v for k, v in asdict(self).items() if k in _REQUIRED or v is not None}
        return jsonable(row)


_FIELDS = frozenset(f.name for f in fields(TrialRow))
_REQUIRED = frozenset({"trial_number", "config_key", "concurrency"})
