"""The report's sections as plain data: what the renderers draw, and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specbench.report.adaptive_view import AdaptiveView
from specbench.report.verdict_section import VerdictSection
from specbench.verdict.candidates import finite
from specbench.verdict.decision import Decision

#: Configurations drawn in the speedup-vs-concurrency plot (more is unreadable).
TOP_CONFIGS_PLOTTED = 5
#: Rows of the Markdown top table.
TOP_CONFIGS_SUMMARY = 5


# --------------------------------------------------------------------------- helpers
def int_or_none(value: Any) -> int | None:
    number = finite(value)
    return None if number is None else int(number)


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# --------------------------------------------------------------------------- views
@dataclass
class Overview:
    target: str
    backend: str
    simulated: bool
    strategy: str
    created_at: str
    specbench_version: str
    command: str
    concurrencies: list[int]
    primary_concurrency: int
    target_model: str
    draft_model: str
    algorithm: str
    dataset: str
    num_prompts: int
    max_new_tokens: int
    workload_digest: str
    num_trials: int
    num_completed: int
    num_failed: int
    num_requests: int
    #: Trials the search ran (Optuna numbers them all) and how many of them repeated a
    #: configuration already measured, so its result was reused: why trial numbers run
    #: past the count of trials shown.
    search_trials: int = 0
    reused: int = 0

    @property
    def trials_text(self) -> str:
        """``30 trials (30 completed, 0 failed)``, and where the numbers go past 30."""
        text = (
            f"{self.num_trials} trials ({self.num_completed} completed, {self.num_failed} failed)"
        )
        if self.search_trials > self.num_trials:
            text += (
                f", numbered 0-{self.search_trials - 1}: the search ran {self.search_trials} "
                f"trials and {self.reused or self.search_trials - self.num_trials} of them "
                "repeated a configuration already measured, whose result was reused"
            )
        return text


@dataclass
class SpeedupPoint:
    concurrency: int
    speedup: float | None
    pays: bool | None  # None when the speedup is unknown


@dataclass
class VerdictView:
    """The verdict section: what to run, why, and up to what load."""

    decision: Decision
    status: str
    recommended: bool
    headline: str
    reason: str
    config_key: str | None
    tau: float | None
    speedup: float | None
    launch_command: str | None
    flags: str | None
    points: list[SpeedupPoint]
    break_even: float | None
    break_even_text: str


@dataclass
class AllReduceSeries:
    label: str
    bytes: list[int]
    latency_us: list[float]
    measured: bool  # False: a profile's fitted curve (model input), not a measurement


@dataclass
class HardwareView:
    name: str
    interconnect_class: str
    tp: int | None
    source: str
    description: str
    evidence: list[str]
    details: list[tuple[str, str]]
    allreduce: list[AllReduceSeries]
    profile_sources: list[str]


@dataclass
class Heatmap:
    """Best speedup per (num_steps, topk) cell, over num_draft_tokens, at one concurrency."""

    concurrency: int
    steps: list[int]
    topks: list[int]
    speedup: list[list[float | None]]  # [steps index][topk index]
    draft_tokens: list[list[int | None]]
    #: The tone of each cell's interval (colours.tone); "" where not tested.
    tones: list[list[str]] = field(default_factory=list)
    #: (steps index, topk index) of the mixed-load pick's cell, when it is drawn.
    pick_cell: tuple[int, int] | None = None
    pick_key: str | None = None


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float | None]


@dataclass
class TauDistribution:
    source: str  # what the samples are: one configuration or all speculative trials
    domains: list[str]
    samples: dict[str, list[float]]
    stats: dict[str, dict[str, float | int | None]]


@dataclass
class OptimizationHistory:
    concurrency: int
    trial_numbers: list[int]
    speedups: list[float]
    best_so_far: list[float]
    sources: list[str]


@dataclass
class PredictedPoint:
    config_key: str
    concurrency: int
    predicted: float
    measured: float


@dataclass
class PredictionCheck:
    points: list[PredictedPoint]
    mean_abs_pct_error: float | None
    within_10pct: int


@dataclass
class FailedTrial:
    trial_number: int
    config_key: str
    concurrencies: list[int]
    error: str
    log_tail: str


#: (column name, header, kind) of the all-trials table; kind drives formatting and sort.
#: The trial table's columns, the ones a reader compares first: on a phone the
#: configuration stays pinned and speedup, tau and the load fit the first screen, the
#: rest scrolls sideways.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("config_key", "Config", "text"),
    ("speedup", "Speedup", "float2x"),
    ("tau", "tau", "float2"),
    ("concurrency", "Conc.", "int"),
    ("trial_number", "Trial", "int"),
    ("state", "State", "text"),
    ("source", "Source", "text"),
    ("num_steps", "Steps", "int"),
    ("topk", "Top-k", "int"),
    ("num_draft_tokens", "Draft tokens", "int"),
    ("output_tokens_per_s", "Output tok/s", "float1"),
    ("per_stream_tokens_per_s", "Per-stream tok/s", "float1"),
    ("ttft_ms_p50", "TTFT p50 ms", "float1"),
    ("itl_ms_p50", "ITL p50 ms", "float2"),
    ("num_requests", "Requests", "int"),
    ("num_errors", "Errors", "int"),
    ("predicted_speedup", "Predicted speedup", "float2x"),
    ("noisy", "Noisy", "bool"),
    ("noise_reason", "Why noisy", "text"),
)


@dataclass
class TableCell:
    text: str
    sort: str  # numeric or lowercase text sort key; empty sorts last
    #: A speedup's tone from its interval (colours.tone); "" for other cells.
    tone: str = ""


@dataclass
class TrialTable:
    headers: list[tuple[str, str]]  # (header, kind)
    rows: list[list[TableCell]]
    row_states: list[str]


@dataclass
class TopRow:
    rank: int
    config_key: str
    tau: float | None
    speedups: dict[int, float | None]


@dataclass
class ReportData:
    """Everything the report shows."""

    simulated: bool
    overview: Overview
    verdict: VerdictView
    hardware: HardwareView
    heatmap: Heatmap | None
    tau_vs_draft_tokens: list[Series]
    speedup_vs_concurrency: list[Series]
    tau_distribution: TauDistribution | None
    history: OptimizationHistory | None
    prediction: PredictionCheck | None
    table: TrialTable
    failed: list[FailedTrial]
    top: list[TopRow]
    notes: list[str]
    #: The decision on the first screen, with its break-even, why and latency views.
    verdict_section: VerdictSection
    #: Checks against the engine itself: losslessness, tau vs the engine's counters.
    engine_checks: list[str] = field(default_factory=list)
    #: Both engines' adaptive configs from this run, and the ramp's answer.
    adaptive: AdaptiveView | None = None
