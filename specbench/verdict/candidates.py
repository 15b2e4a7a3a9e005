"""The configurations a decision ranks: one per (tree, load), each with its interval.

Every speedup carries an interval. A configuration "pays" only when its whole interval
lies above 1.0, and configurations whose speedup falls inside the best one's interval
are "equivalent within noise": among those the cheapest tree wins (fewest verified
tokens, then fewest draft forwards, then narrowest), because at equal speed a smaller
tree costs less memory and degrades less when the load grows.

Trees that are the same tree under different flags are merged first: with one draft
step the draft runs once and verifies the best ``num_draft_tokens - 1`` children of the
root whatever ``topk`` is (SGLang's EAGLE worker, python/sglang/srt/speculative/
eagle_worker.py, selects the top nodes by cumulative score from the single expansion).

This module works on plain rows (a pandas frame: trials.csv, or the model's predictions
in the same columns), so the sweep and ``predict`` rank the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from specbench.spec_config import BASELINE_KEY, SpecConfig

#: Relative half-width used when a speedup has no measured interval at all: the
#: run-to-run spread of a closed-loop benchmark on a quiet machine.
NOISE_MARGIN = 0.02

KIND_SPECULATE = "speculate"
KIND_SPECULATE_BELOW = "speculate-below"
KIND_OFF = "off"
#: Not even the no-speculation server fits in GPU memory at the run's TP at the lowest
#: load: nothing measured here can be launched as it was run.
KIND_NO_FIT = "does-not-fit"
VERDICT_KINDS = (KIND_SPECULATE, KIND_SPECULATE_BELOW, KIND_OFF, KIND_NO_FIT)

CI_TRIAL = "trial"  # the measurement's own bootstrap interval (trials.csv columns)
CI_REQUESTS = "requests"  # a bootstrap over requests.jsonl, computed here
CI_NOISE = "noise-margin"  # +-NOISE_MARGIN around the point estimate
CI_MODEL = "model"  # +-MODEL_MARGIN around a performance-model prediction

#: Relative half-width of a predicted speedup: the largest error the performance model
#: is allowed against the published EAGLE-3 speedups it is checked on
#: (tests/model/test_published.py, data/published.toml).
MODEL_MARGIN = 0.10

Interval = tuple[float, float]
#: (config_key, concurrency, speedup) -> (low, high, source) or None when unknown.
IntervalSource = Callable[[str, int, float], tuple[float, float, str] | None]
#: The launch line for a configuration; None means a server without speculation.
LaunchLine = Callable[[SpecConfig | None], str]


def tree_cost(config: SpecConfig) -> tuple[int, int, int]:
    """Sort key, cheapest first: verified tokens, then draft forwards, then width."""
    return (config.num_draft_tokens, config.num_steps, config.topk)


def canonical_tree(config: SpecConfig) -> SpecConfig:
    """The representative of the flags that build the same tree.

    With ``num_steps == 1`` the tree is the best ``num_draft_tokens - 1`` children of
    the root for every ``topk`` that can supply them, so the narrowest valid topk
    (1 for a single draft token, else the smallest power of two >= the budget, at least
    2) names the group. Configurations of different methods never merge: the method
    and its parameters are kept.
    """
    if config.num_steps != 1:
        return config
    need = config.num_draft_tokens - 1
    topk = 1 if need == 1 else max(2, 1 << (need - 1).bit_length())
    return dataclasses.replace(config, topk=min(topk, config.topk))


def noise_interval(speedup: float, margin: float = NOISE_MARGIN) -> Interval:
    """The fallback interval when nothing better is known."""
    return (speedup * (1.0 - margin), speedup * (1.0 + margin))


@dataclass(frozen=True)
class Candidate:
    """One (merged) configuration at one concurrency, with its interval."""

    config: SpecConfig
    aliases: tuple[str, ...]  # other flag sets that build the same tree
    concurrency: int
    tau: float | None
    speedup: float
    ci: Interval
    ci_source: str

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def pays(self) -> bool:
        return self.ci[0] > 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "config": config_json(self.config),
            "aliases": list(self.aliases),
            "tau": self.tau,
            "speedup": self.speedup,
            "speedup_ci": [self.ci[0], self.ci[1]],
            "ci_source": self.ci_source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], concurrency: int) -> Candidate:
        """The inverse of ``to_json`` (results.json's ``decision.candidates``)."""
        low, high = data["speedup_ci"]
        return cls(
            config_from_json(data["config"]),
            tuple(str(a) for a in data.get("aliases") or ()),
            concurrency,
            finite(data.get("tau")),
            float(data["speedup"]),
            (float(low), float(high)),
            str(data.get("ci_source") or CI_NOISE),
        )


def config_from_json(data: Mapping[str, Any]) -> SpecConfig:
    """A configuration from its ``config_json`` form."""
    return SpecConfig.from_fields(data)


def config_json(config: SpecConfig) -> dict[str, Any]:
    return {"key": config.key, **config.as_dict()}


def finite(value: Any) -> float | None:
    """A float, or None for missing/NaN/inf (pandas NA included): how a table cell
    becomes a number that may be shown."""
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------- table
def completed_speculative_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """The completed rows of speculative configurations, config columns as integers.

    Failed, pruned and baseline rows never rank a tree; empty when nothing qualifies.
    """
    if trials.empty or "state" not in trials:
        none: pd.DataFrame = trials.iloc[0:0].copy()
        return none
    done: pd.DataFrame = trials[
        (trials["state"].astype(str) == "complete")
        & (trials["config_key"].astype(str) != BASELINE_KEY)
        & trials["num_steps"].notna()
    ].copy()
    for name in ("num_steps", "topk", "num_draft_tokens", "concurrency"):
        done[name] = done[name].astype(int)
    return done


def candidate_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Completed speculative rows, merged per (canonical tree, concurrency).

    Columns: config_key, num_steps, topk, num_draft_tokens, concurrency, tau, speedup,
    speedup_ci_low, speedup_ci_high, aliases (a tuple of the merged keys). Repeated
    measurements of one configuration are averaged; an interval column that is missing
    (older runs) is NaN.
    """
    columns = ["config_key", "num_steps", "topk", "num_draft_tokens", "concurrency"]
    values = ["tau", "speedup", "speedup_ci_low", "speedup_ci_high"]
    empty: pd.DataFrame = pd.DataFrame(columns=[*columns, *values, "aliases"])
    done = completed_speculative_rows(trials)
    if done.empty:
        return empty
    for name in values:
        done[name] = pd.to_numeric(done[name], errors="coerce") if name in done else math.nan
    measured = [SpecConfig.from_fields(row) for row in done.to_dict("records")]
    canon = [canonical_tree(c) for c in measured]
    done["member"] = [c.key for c in measured]
    done["config_key"] = [c.key for c in canon]
    done["num_steps"] = [c.num_steps for c in canon]
    done["topk"] = [c.topk for c in canon]
    grouped = done.groupby(columns, as_index=False).agg(
        tau=("tau", "mean"),
        speedup=("speedup", "mean"),
        speedup_ci_low=("speedup_ci_low", "mean"),
        speedup_ci_high=("speedup_ci_high", "mean"),
        members=("member", lambda s: tuple(sorted(set(s)))),
    )
    grouped["aliases"] = [
        tuple(m for m in members if m != key)
        for key, members in zip(grouped["config_key"], grouped["members"], strict=True)
    ]
    out: pd.DataFrame = grouped.drop(columns=["members"]).reset_index(drop=True)
    return out


def config_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean tau and speedup per (configuration, concurrency) over completed rows.

    A configuration can be measured by several trials (a repeated grid point, a
    re-run); averaging them keeps one row per configuration for every view.
    """
    columns = ["config_key", "num_steps", "topk", "num_draft_tokens", "concurrency"]
    empty: pd.DataFrame = pd.DataFrame(columns=[*columns, "tau", "speedup", "trials"])
    done = completed_speculative_rows(trials)
    if done.empty:
        return empty
    done["tau"] = pd.to_numeric(done["tau"], errors="coerce")
    done["speedup"] = pd.to_numeric(done["speedup"], errors="coerce")
    grouped = done.groupby(columns, as_index=False).agg(
        tau=("tau", "mean"), speedup=("speedup", "mean"), trials=("trial_number", "nunique")
    )
    out: pd.DataFrame = grouped.reset_index(drop=True)
    return out


def rank_configs(table: pd.DataFrame, concurrency: int) -> list[dict[str, Any]]:
    """Configurations at one concurrency, best first.

    Order: highest speedup (missing speedups last), then higher tau, then fewer draft
    tokens (cheaper verify, less memory), then the key for a stable order.
    """
    rows = table[table["concurrency"] == concurrency]
    ranked: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        ranked.append(
            {
                "config_key": str(row.config_key),
                "num_steps": int(row.num_steps),
                "topk": int(row.topk),
                "num_draft_tokens": int(row.num_draft_tokens),
                "tau": finite(row.tau),
                "speedup": finite(row.speedup),
            }
        )

    def order(item: dict[str, Any]) -> tuple[int, float, float, int, str]:
        speed, tau = item["speedup"], item["tau"]
        return (
            0 if speed is not None else 1,
            -(speed if speed is not None else 0.0),
            -(tau if tau is not None else 0.0),
            item["num_draft_tokens"],
            item["config_key"],
        )

    ranked.sort(key=order)
    return ranked


def candidates_at(
    table: pd.DataFrame, concurrency: int, intervals: IntervalSource | None = None
) -> list[Candidate]:
    """Every configuration with a known speedup at one load, best first.

    An interval is never narrower than the noise margin: a bootstrap over one run's
    requests sees the prompt-to-prompt spread, not the run-to-run spread of a server
    (scheduling, clocks, cache state), which pyperf-style benchmarks put at a few %.
    """
    rows = table[table["concurrency"] == concurrency]
    out: list[Candidate] = []
    for row in rows.itertuples(index=False):
        speed = finite(row.speedup)
        if speed is None:
            continue
        low, high = finite(row.speedup_ci_low), finite(row.speedup_ci_high)
        if low is not None and high is not None and low <= speed <= high:
            ci, source = (low, high), CI_TRIAL
        else:
            found = intervals(str(row.config_key), concurrency, speed) if intervals else None
            if found is not None:
                ci, source = (min(found[0], speed), max(found[1], speed)), found[2]
            else:
                ci, source = noise_interval(speed), CI_NOISE
        floor = noise_interval(speed)
        ci = (min(ci[0], floor[0]), max(ci[1], floor[1]))
        config = SpecConfig.from_fields(row._asdict())
        out.append(
            Candidate(
                config,
                tuple(row.aliases),
                concurrency,
                finite(row.tau),
                speed,
                ci,
                source,
            )
        )
    out.sort(key=lambda c: (-c.speedup, tree_cost(c.config), c.key))
    return out


# ---------------------------------------------------------------------------- break-even
def interpolate_break_even(
    low_c: int, low_speedup: float, high_c: int, high_speedup: float
) -> float:
    """Concurrency where speedup crosses 1.0, linear in log(concurrency).

    Throughput curves are roughly linear in log load, so a geometric interpolation
    between 8 and 32 gives a believable ~16 rather than the arithmetic 20. Clamped to
    the measured interval: never extrapolated past a measured load.
    """
    if low_speedup == high_speedup:
        return float(high_c)
    frac = (low_speedup - 1.0) / (low_speedup - high_speedup)
    frac = min(max(frac, 0.0), 1.0)
    return float(math.exp(math.log(low_c) + frac * (math.log(high_c) - math.log(low_c))))


def find_candidate(
    per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, c: int
) -> Candidate | None:
    for cand in per_load.get(c, ()):
        if cand.config == config:
            return cand
    return None


def format_concurrency(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


__all__ = [
    "CI_MODEL",
    "CI_NOISE",
    "CI_REQUESTS",
    "CI_TRIAL",
    "KIND_NO_FIT",
    "KIND_OFF",
    "KIND_SPECULATE",
    "KIND_SPECULATE_BELOW",
    "MODEL_MARGIN",
    "NOISE_MARGIN",
    "VERDICT_KINDS",
    "Candidate",
    "IntervalSource",
    "LaunchLine",
    "candidate_table",
    "candidates_at",
    "canonical_tree",
    "completed_speculative_rows",
    "config_from_json",
    "config_json",
    "config_table",
    "find_candidate",
    "finite",
    "format_concurrency",
    "interpolate_break_even",
    "noise_interval",
    "rank_configs",
    "tree_cost",
]
