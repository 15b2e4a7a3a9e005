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
from typing import Any, Protocol

import pandas as pd

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
            "config": _config_json(self.config),
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
            "config": None if self.config is None else _config_json(self.config),
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

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "break_even": self.break_even,
            "config": None if self.config is None else _config_json(self.config),
            "launch": self.launch,
            "reason": self.reason,
            "speculate_at": list(self.speculate_at),
            "off_at": list(self.off_at),
            "worst_fraction_of_best": self.worst_fraction_of_best,
        }


def _config_json(config: SpecConfig) -> dict[str, Any]:
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
    if trials.empty or "state" not in trials:
        return empty
    done = trials[
        (trials["state"].astype(str) == "complete")
        & (trials["config_key"].astype(str) != BASELINE_KEY)
        & trials["num_steps"].notna()
    ].copy()
    if done.empty:
        return empty
    for name in ("num_steps", "topk", "num_draft_tokens", "concurrency"):
        done[name] = done[name].astype(int)
    for name in values:
        done[name] = pd.to_numeric(done[name], errors="coerce") if name in done else math.nan
    canon = [
        canonical_tree(SpecConfig(int(s), int(k), int(n)))
        for s, k, n in zip(done["num_steps"], done["topk"], done["num_draft_tokens"], strict=True)
    ]
    done["member"] = [
        f"{s}-{k}-{n}"
        for s, k, n in zip(done["num_steps"], done["topk"], done["num_draft_tokens"], strict=True)
    ]
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
        config = SpecConfig(int(row.num_steps), int(row.topk), int(row.num_draft_tokens))
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
    for points in by_key.values():
        if len(points) != len(loads):
            continue
        score = min(points[c].speedup / best[c] for c in loads)
        slack = max((points[c].ci[1] - points[c].ci[0]) / 2.0 / points[c].speedup for c in loads)
        scored.append((score, slack, points[min(loads)]))
    if not scored:
        return None, None
    top_score, top_slack, _ = max(scored, key=lambda s: s[0])
    tied = [s for s in scored if s[0] >= top_score * (1.0 - top_slack)]
    score, _, pick = min(tied, key=lambda s: (tree_cost(s[2].config), -s[0], s[2].key))
    return pick, score


@dataclass
class Outcome:
    """Everything this module decides for one run."""

    recommendations: list[Recommendation]
    verdict: VerdictSummary
    per_load: dict[int, list[Candidate]]

    def to_json(self) -> dict[str, Any]:
        return {
            "recommendations": [r.to_json() for r in self.recommendations],
            "verdict": self.verdict.to_json(),
        }


def decide(
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    launch: LaunchLine,
    *,
    intervals: IntervalSource | None = None,
    baseline_loads: Sequence[int] | None = None,
    simulated: bool = False,
    host_staged: bool = False,
) -> Outcome:
    """Per-load recommendations and the verdict for mixed load.

    ``baseline_loads`` are the concurrencies where a baseline completed; a load gets a
    recommendation when it has a speculative speedup or a baseline.
    """
    table = candidate_table(trials)
    loads = sorted({int(c) for c in concurrencies})
    per_load = {c: candidates_at(table, c, intervals) for c in loads}
    # A load is measured when a speedup exists there, or when its baseline ran (then
    # no tree completed, and the answer there is no speculation).
    measured = [c for c in loads if per_load[c] or c in (baseline_loads or ())]
    recs = [recommend_at(per_load[c], c, launch) for c in measured]
    verdict = summarise(recs, per_load, launch, simulated=simulated, host_staged=host_staged)
    return Outcome(recs, verdict, per_load)


def summarise(
    recs: Sequence[Recommendation],
    per_load: Mapping[int, Sequence[Candidate]],
    launch: LaunchLine,
    *,
    simulated: bool = False,
    host_staged: bool = False,
) -> VerdictSummary:
    """Three-way verdict from the per-load recommendations."""
    prefix = "SIMULATED: " if simulated else ""
    on = [r.concurrency for r in recs if r.config is not None]
    off = [r.concurrency for r in recs if r.config is None]
    if not recs or all(r.speedup is None for r in recs):
        reason = (
            "No speedup could be computed (no baseline or no completed speculative "
            "configuration), so keep speculation off until one is measured."
        )
        return VerdictSummary(KIND_OFF, None, None, launch(None), prefix + reason, on, off)
    first = recs[0]
    if first.config is None:
        return _off_verdict(recs, launch, prefix, host_staged, on, off)
    # Speculate at the low loads that pay, up to the first load that does not.
    prefix_on = []
    for r in recs:
        if r.config is None:
            break
        prefix_on.append(r.concurrency)
    pick, score = robust_pick(per_load, prefix_on)
    # prefix_on is non-empty and measured, so a pick exists; first.config is a guard.
    pick_config = first.config if pick is None else pick.config
    if len(prefix_on) == len(recs):
        return _speculate_verdict(recs, per_load, pick_config, score, launch, prefix, on, off)
    stop = recs[len(prefix_on)]
    point = _crossing(per_load, pick_config, prefix_on[-1], stop.concurrency)
    curve = ", ".join(_speed_at(per_load, pick_config, r.concurrency) for r in recs)
    reason = (
        f"Speculate below about {_fmt_c(point)} concurrent requests with {pick_config.key} "
        f"(interpolated between the measured loads {prefix_on[-1]} and {stop.concurrency}; "
        f"{curve}); above that, launch without speculation: at concurrency "
        f"{stop.concurrency} no tree beats the baseline beyond noise"
        + (_best_loss(stop) if stop.best_speculative else "")
        + "."
    )
    return VerdictSummary(
        KIND_SPECULATE_BELOW,
        point,
        pick_config,
        launch(pick_config),
        prefix + reason,
        on,
        off,
        score,
    )


def _off_verdict(
    recs: Sequence[Recommendation],
    launch: LaunchLine,
    prefix: str,
    host_staged: bool,
    on: list[int],
    off: list[int],
) -> VerdictSummary:
    first = recs[0]
    why = (
        "all-reduce is staged through host memory (no GPU peer-to-peer), so the draft and "
        "verify collectives cost more than the accepted tokens save"
        if host_staged
        else "no tree beats the baseline beyond noise"
    )
    loss = _best_loss(first) if first.best_speculative else ""
    also = (
        f" It pays only at concurrency {', '.join(str(c) for c in on)}, above the lowest "
        "measured load; a server that sees light load would lose."
        if on
        else ""
    )
    reason = f"Turn speculation off: at concurrency {first.concurrency} {why}{loss}.{also}"
    return VerdictSummary(KIND_OFF, None, None, launch(None), prefix + reason, on, off)


def _speculate_verdict(
    recs: Sequence[Recommendation],
    per_load: Mapping[int, Sequence[Candidate]],
    pick: SpecConfig,
    score: float | None,
    launch: LaunchLine,
    prefix: str,
    on: list[int],
    off: list[int],
) -> VerdictSummary:
    curve = ", ".join(_speed_at(per_load, pick, r.concurrency) for r in recs)
    top = recs[-1].concurrency
    reason = (
        f"Speculate with {pick.key} at every measured load ({curve}); the break-even lies "
        f"above concurrency {top}, the highest measured."
    )
    return VerdictSummary(KIND_SPECULATE, None, pick, launch(pick), prefix + reason, on, off, score)


def _lookup(
    per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, c: int
) -> Candidate | None:
    for cand in per_load.get(c, ()):
        if cand.config == config:
            return cand
    return None


def _speed_at(per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, c: int) -> str:
    cand = _lookup(per_load, config, c)
    if cand is None:
        return f"not measured at {c}"
    return f"{cand.speedup:.2f}x [{cand.ci[0]:.2f}-{cand.ci[1]:.2f}] at {c}"


def _best_loss(rec: Recommendation) -> str:
    best = rec.best_speculative
    assert best is not None
    return f" (the best tree, {best.key}, reaches {best.speedup:.2f}x [{best.ci[0]:.2f}-{best.ci[1]:.2f}])"


def _crossing(
    per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, low_c: int, high_c: int
) -> float:
    """Break-even of ``config`` between two measured loads; the envelope where unmeasured."""
    low = _lookup(per_load, config, low_c) or per_load[low_c][0]
    high_cands = per_load.get(high_c) or ()
    high = _lookup(per_load, config, high_c) or (high_cands[0] if high_cands else None)
    if high is None:
        return float(low_c)
    return interpolate_break_even(low_c, low.speedup, high_c, high.speedup)


def _fmt_c(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


# ---------------------------------------------------------------------------- defaults
@dataclass
class DefaultComparison:
    """A configuration the user would otherwise launch, at every load."""

    name: str  # "model card", "SGLang automatic choice"
    config: SpecConfig
    points: dict[int, Candidate | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": _config_json(self.config),
            "by_concurrency": {
                str(c): None if p is None else {"speedup": p.speedup, "speedup_ci": list(p.ci)}
                for c, p in self.points.items()
            },
        }


class PresetLike(Protocol):
    """The two configurations a target preset names (specbench.model.TargetPreset)."""

    @property
    def card_config(self) -> SpecConfig: ...
    @property
    def auto_config(self) -> SpecConfig: ...


def named_defaults(target: PresetLike | None) -> dict[str, SpecConfig]:
    """What a user would launch without specbench: the model card's flags, or no
    ``--speculative-num-*`` flags at all (SGLang then chooses by architecture)."""
    if target is None:
        return {}
    return {"model card": target.card_config, "SGLang automatic choice": target.auto_config}


def compare_defaults(
    per_load: Mapping[int, Sequence[Candidate]], named: Mapping[str, SpecConfig]
) -> list[DefaultComparison]:
    """The named configurations at every load (None where not measured)."""
    out = []
    for name, config in named.items():
        canon = canonical_tree(config)
        points = {c: _lookup(per_load, canon, c) for c in sorted(per_load)}
        out.append(DefaultComparison(name, config, points))
    return out


# ---------------------------------------------------------------------------- text
def _interval_text(speedup: Any, ci: Any) -> str:
    if not isinstance(speedup, (int, float)):
        return "n/a"
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"{speedup:.2f}x [{ci[0]:.2f}-{ci[1]:.2f}]"
    return f"{speedup:.2f}x"


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """The verdict and the per-load picks as plain lines, from results.json's fields.

    Read from the JSON contract rather than from objects so that the terminal, a CI
    summary and a re-read run directory print exactly what results.json says.
    """
    verdict = results.get("verdict")
    recs = results.get("recommendations")
    if not isinstance(verdict, Mapping) or not isinstance(recs, list):
        return []
    lines = [
        f"verdict: {verdict.get('kind')}"
        + (
            f" (break-even ~{_fmt_c(float(verdict['break_even']))} concurrent requests)"
            if isinstance(verdict.get("break_even"), (int, float))
            else ""
        )
    ]
    lines.append(str(verdict.get("reason", "")))
    for rec in recs:
        if not isinstance(rec, Mapping):
            continue
        config = rec.get("config")
        c = rec.get("concurrency")
        if isinstance(config, Mapping):
            what = (
                f"{config.get('key')} {_interval_text(rec.get('speedup'), rec.get('speedup_ci'))}"
            )
            equivalent = rec.get("equivalent") or []
            if equivalent:
                what += f", {len(equivalent)} more within noise"
        else:
            best = rec.get("best_speculative")
            what = "off (no speculation)"
            if isinstance(best, Mapping) and isinstance(best.get("config"), Mapping):
                what += (
                    f"; best tree {best['config'].get('key')} "
                    f"{_interval_text(best.get('speedup'), best.get('speedup_ci'))}"
                )
        lines.append(f"  at concurrency {c}: {what}")
        lines.append(f"    {rec.get('launch', '')}")
    for item in results.get("defaults") or []:
        if not isinstance(item, Mapping) or not isinstance(item.get("config"), Mapping):
            continue
        cells = []
        for c, point in (item.get("by_concurrency") or {}).items():
            if isinstance(point, Mapping):
                cells.append(
                    f"{_interval_text(point.get('speedup'), point.get('speedup_ci'))} at {c}"
                )
            else:
                cells.append(f"not measured at {c}")
        lines.append(f"  {item.get('name')} ({item['config'].get('key')}): {', '.join(cells)}")
    return lines


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
    "DefaultComparison",
    "Outcome",
    "Recommendation",
    "VerdictSummary",
    "candidate_table",
    "candidates_at",
    "canonical_tree",
    "compare_defaults",
    "decide",
    "interpolate_break_even",
    "named_defaults",
    "noise_interval",
    "recommend_at",
    "robust_pick",
    "summarise",
    "summary_lines",
    "tree_cost",
]
