"""Per-load recommendations and the three-way verdict, with their uncertainty.

A deployer launches one server and then lives with whatever load arrives, so the answer
is per load (which tree, or none, at each measured concurrency) and then one verdict
for mixed load: ``speculate`` (pays at every measured load), ``speculate-below`` (pays
up to a break-even concurrency, interpolated between measured loads) or ``off``.

Every speedup carries an interval. A configuration "pays" only when its whole interval
lies above 1.0, and configurations whose speedup falls inside the best one's interval
are "equivalent within noise": among those the cheapest tree wins (fewest verified
tokens, then fewest draft forwards, then narrowest), because at equal speed a smaller
tree costs less memory and degrades less when the load grows.

Trees that are the same tree under different flags are merged first: with one draft
step the draft runs once and verifies the best ``num_draft_tokens - 1`` children of the
root whatever ``topk`` is (SGLang's EAGLE worker, python/sglang/srt/speculative/
eagle_worker.py, selects the top nodes by cumulative score from the single expansion).

This module works on plain rows (a pandas frame) and takes the launch line as a
function, so the engine adapter's flag builder stays the one place that knows flags.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.rundir.break_even import BreakEven
from specbench.spec_config import BASELINE_KEY, SpecConfig

#: Relative half-width used when a speedup has no measured interval at all: the
#: run-to-run spread of a closed-loop benchmark on a quiet machine.
NOISE_MARGIN = 0.02

KIND_SPECULATE = "speculate"
KIND_SPECULATE_BELOW = "speculate-below"
KIND_OFF = "off"
VERDICT_KINDS = (KIND_SPECULATE, KIND_SPECULATE_BELOW, KIND_OFF)

CI_TRIAL = "trial"  # the measurement's own bootstrap interval (trials.csv columns)
CI_REQUESTS = "requests"  # a bootstrap over requests.jsonl, computed here
CI_NOISE = "noise-margin"  # +-NOISE_MARGIN around the point estimate

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
    2) names the group.
    """
    if config.num_steps != 1:
        return config
    need = config.num_draft_tokens - 1
    topk = 1 if need == 1 else max(2, 1 << (need - 1).bit_length())
    return SpecConfig(1, min(topk, config.topk), config.num_draft_tokens)


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


@dataclass
class Recommendation:
    """What to launch at one concurrency: a tree, or no speculation (config None)."""

    concurrency: int
    config: SpecConfig | None
    speedup: float | None
    speedup_ci: Interval | None
    equivalent: list[str]
    launch: str
    ci_source: str | None = None
    #: The best speculative tree here, kept when the recommendation is "off" so that the
    #: reader sees by how much speculation loses.
    best_speculative: Candidate | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "config": None if self.config is None else config_json(self.config),
            "speedup": self.speedup,
            "speedup_ci": None if self.speedup_ci is None else list(self.speedup_ci),
            "ci_source": self.ci_source,
            "equivalent": list(self.equivalent),
            "launch": self.launch,
            "best_speculative": (
                None if self.best_speculative is None else self.best_speculative.to_json()
            ),
        }


@dataclass
class VerdictSummary:
    """The one answer for mixed load, and why."""

    kind: str
    break_even: float | None
    config: SpecConfig | None
    launch: str
    reason: str
    speculate_at: list[int] = field(default_factory=list)
    off_at: list[int] = field(default_factory=list)
    #: Worst fraction of the per-load best that the mixed-load pick reaches.
    worst_fraction_of_best: float | None = None
    #: The break-even's interval and the loads behind it (speculate-below only).
    break_even_range: BreakEven | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "break_even": self.break_even,
            "break_even_range": (
                None if self.break_even_range is None else self.break_even_range.to_json()
            ),
            "config": None if self.config is None else config_json(self.config),
            "launch": self.launch,
            "reason": self.reason,
            "speculate_at": list(self.speculate_at),
            "off_at": list(self.off_at),
            "worst_fraction_of_best": self.worst_fraction_of_best,
        }


def config_json(config: SpecConfig) -> dict[str, Any]:
    return {"key": config.key, **config.as_dict()}


def _number(value: Any) -> float | None:
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
        speed = _number(row.speedup)
        if speed is None:
            continue
        low, high = _number(row.speedup_ci_low), _number(row.speedup_ci_high)
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
                _number(row.tau),
                speed,
                ci,
                source,
            )
        )
    out.sort(key=lambda c: (-c.speedup, tree_cost(c.config), c.key))
    return out


# ---------------------------------------------------------------------------- per load
def recommend_at(
    candidates: Sequence[Candidate], concurrency: int, launch: LaunchLine
) -> Recommendation:
    """The cheapest tree within noise of the best that pays, or no speculation."""
    if not candidates:
        return Recommendation(concurrency, None, None, None, [], launch(None))
    best = candidates[0]
    if not best.pays:
        # Off: the configurations that cannot be told apart from no speculation.
        tied = [c.key for c in candidates if c.ci[0] <= 1.0 <= c.ci[1]]
        return Recommendation(
            concurrency, None, 1.0, (1.0, 1.0), tied, launch(None), None, best_speculative=best
        )
    within = [c for c in candidates if c.speedup >= best.ci[0] and c.pays]
    pick = min(within, key=lambda c: (tree_cost(c.config), -c.speedup, c.key))
    equivalent = [c.key for c in within if c.key != pick.key]
    return Recommendation(
        concurrency,
        pick.config,
        pick.speedup,
        pick.ci,
        equivalent,
        launch(pick.config),
        pick.ci_source,
    )


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


# ---------------------------------------------------------------------------- mixed load
def robust_pick(
    per_load: Mapping[int, Sequence[Candidate]], loads: Sequence[int]
) -> tuple[Candidate | None, float | None]:
    """The tree whose worst fraction of the per-load best, over ``loads``, is highest.

    Minimax regret rather than the best mean: a tree that is 1.25x at 8 and 0.9x at 1
    is a worse deployment than one that is 1.2x at both. Scores within the noise of the
    top score tie, and ties go to the cheaper tree. Returns the pick's candidate at the
    lowest of ``loads`` and its score.
    """
    if not loads:
        return None, None
    best = {c: per_load[c][0].speedup for c in loads if per_load.get(c)}
    if len(best) != len(loads):
        return None, None
    by_key: dict[str, dict[int, Candidate]] = {}
    for c in loads:
        for cand in per_load[c]:
            by_key.setdefault(cand.key, {})[c] = cand
    scored: list[tuple[float, float, Candidate]] = []
    complete = [p for p in by_key.values() if len(p) == len(loads)]
    # A tree that does not pay at one of the loads would be worse there than no
    # speculation: prefer the trees that pay at all of them.
    paying = [p for p in complete if all(p[c].pays for c in loads)]
    for points in paying or complete:
        score = min(points[c].speedup / best[c] for c in loads)
        slack = max((points[c].ci[1] - points[c].ci[0]) / 2.0 / points[c].speedup for c in loads)
        scored.append((score, slack, points[min(loads)]))
    if not scored:
        return None, None
    top_score, top_slack, _ = max(scored, key=lambda s: s[0])
    tied = [s for s in scored if s[0] >= top_score * (1.0 - top_slack)]
    score, _, pick = min(tied, key=lambda s: (tree_cost(s[2].config), -s[0], s[2].key))
    return pick, score


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
    "CI_NOISE",
    "CI_REQUESTS",
    "CI_TRIAL",
    "KIND_OFF",
    "KIND_SPECULATE",
    "KIND_SPECULATE_BELOW",
    "NOISE_MARGIN",
    "VERDICT_KINDS",
    "Candidate",
    "Recommendation",
    "VerdictSummary",
    "candidate_table",
    "candidates_at",
    "canonical_tree",
    "config_json",
    "find_candidate",
    "format_concurrency",
    "interpolate_break_even",
    "noise_interval",
    "recommend_at",
    "robust_pick",
    "tree_cost",
]
