"""From per-load candidates to the picks: what to launch at each load, and for mixed load.

A deployer launches one server and then lives with whatever load arrives, so the answer
is per load (which tree, or none, at each measured concurrency) and then one pick for
mixed load: ``speculate`` (pays at every measured load), ``speculate-below`` (pays up to
a break-even concurrency, interpolated between measured loads) or ``off``.

Per load, the cheapest tree within noise of the best that pays, or no speculation. Once
the mixed-load pick is known it is the pick at every load where it pays (one server,
one tree, one answer on every surface); a tree that a server for that load alone would
run instead, because it is faster there beyond noise, is kept beside it as ``dedicated``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from specbench.rundir.break_even import BreakEven, locate_break_even
from specbench.spec_config import SpecConfig
from specbench.verdict.candidates import (
    KIND_OFF,
    KIND_SPECULATE,
    KIND_SPECULATE_BELOW,
    Candidate,
    LaunchLine,
    config_from_json,
    config_json,
    find_candidate,
    tree_cost,
)


@dataclass
class LoadPick:
    """What to launch at one concurrency: a tree, or no speculation (config None)."""

    concurrency: int
    config: SpecConfig | None
    speedup: float | None
    speedup_ci: tuple[float, float] | None
    equivalent: list[str]
    launch: str
    ci_source: str | None = None
    #: The best speculative tree here, kept when the pick is "off" so that the reader
    #: sees by how much speculation loses.
    best_speculative: Candidate | None = None
    #: The fastest tree here when the pick is a cheaper one within its noise.
    fastest: Candidate | None = None
    #: What a server for this load alone would run, when it beats the one server's tree
    #: here beyond noise (the mixed-load pick trades it for the other loads).
    dedicated: Candidate | None = None

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
            "fastest": None if self.fastest is None else self.fastest.to_json(),
            "dedicated": None if self.dedicated is None else self.dedicated.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadPick:
        c = int(data["concurrency"])
        ci = data.get("speedup_ci")
        best, fastest = data.get("best_speculative"), data.get("fastest")
        dedicated = data.get("dedicated")
        return cls(
            c,
            None if data.get("config") is None else config_from_json(data["config"]),
            None if data.get("speedup") is None else float(data["speedup"]),
            None if ci is None else (float(ci[0]), float(ci[1])),
            [str(k) for k in data.get("equivalent") or ()],
            str(data.get("launch") or ""),
            data.get("ci_source"),
            None if best is None else Candidate.from_json(best, c),
            None if fastest is None else Candidate.from_json(fastest, c),
            None if dedicated is None else Candidate.from_json(dedicated, c),
        )


@dataclass
class MixedLoad:
    """The pick for mixed load, before the decision adds feasibility and the headline."""

    kind: str
    break_even: float | None
    config: SpecConfig | None
    reason: str
    speculate_at: list[int] = field(default_factory=list)
    off_at: list[int] = field(default_factory=list)
    #: Worst fraction of the per-load best that the mixed-load pick reaches.
    worst_fraction_of_best: float | None = None
    #: The break-even's interval and the loads behind it (speculate-below only).
    break_even_range: BreakEven | None = None


def within_noise(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The paying candidates whose speedup lies inside the best one's interval."""
    if not candidates or not candidates[0].pays:
        return []
    best = candidates[0]
    return [c for c in candidates if c.speedup >= best.ci[0] and c.pays]


def pick_at(candidates: Sequence[Candidate], concurrency: int, launch: LaunchLine) -> LoadPick:
    """The cheapest tree within noise of the best that pays, or no speculation."""
    if not candidates:
        return LoadPick(concurrency, None, None, None, [], launch(None))
    best = candidates[0]
    if not best.pays:
        # Off: the configurations that cannot be told apart from no speculation.
        tied = [c.key for c in candidates if c.ci[0] <= 1.0 <= c.ci[1]]
        return LoadPick(
            concurrency, None, 1.0, (1.0, 1.0), tied, launch(None), None, best_speculative=best
        )
    within = within_noise(candidates)
    pick = min(within, key=_cheapest)
    return _launching(pick, within, candidates, launch)


def one_server_at(
    candidates: Sequence[Candidate], concurrency: int, launch: LaunchLine, one: SpecConfig
) -> LoadPick:
    """The pick at one load of the one server that runs ``one`` (the mixed-load pick)
    wherever it pays, with the dedicated per-load tree beside it when that one is faster
    beyond noise; the load's own pick where ``one`` does not pay."""
    own = pick_at(candidates, concurrency, launch)
    mine = next((c for c in candidates if c.config == one), None)
    if own.config is None or own.config == one or mine is None or not mine.pays:
        return own
    within = within_noise(candidates)
    out = _launching(mine, within, candidates, launch)
    if mine not in within:
        out.dedicated = next((c for c in candidates if c.config == own.config), None)
    return out


def _launching(
    pick: Candidate,
    within: Sequence[Candidate],
    candidates: Sequence[Candidate],
    launch: LaunchLine,
) -> LoadPick:
    best = candidates[0]
    return LoadPick(
        pick.concurrency,
        pick.config,
        pick.speedup,
        pick.ci,
        [c.key for c in within if c.key != pick.key],
        launch(pick.config),
        pick.ci_source,
        fastest=None if pick.key == best.key else best,
    )


def _cheapest(c: Candidate) -> tuple[tuple[int, int, int], float, str]:
    return (tree_cost(c.config), -c.speedup, c.key)


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


def mixed_load(
    picks: Sequence[LoadPick],
    per_load: Mapping[int, Sequence[Candidate]],
    *,
    host_staged: bool = False,
) -> MixedLoad:
    """The three-way answer from the per-load picks."""
    on = [r.concurrency for r in picks if r.config is not None]
    off = [r.concurrency for r in picks if r.config is None]
    if not picks or all(r.speedup is None for r in picks):
        reason = (
            "No speedup could be computed (no baseline or no completed speculative "
            "configuration), so keep speculation off until one is measured."
        )
        return MixedLoad(KIND_OFF, None, None, reason, on, off)
    first = picks[0]
    if first.config is None:
        return _off(picks, host_staged, on, off)
    # Speculate at the low loads that pay, up to the first load that does not.
    prefix_on = []
    for r in picks:
        if r.config is None:
            break
        prefix_on.append(r.concurrency)
    pick, score = robust_pick(per_load, prefix_on)
    # prefix_on is non-empty and measured, so a pick exists; first.config is a guard.
    config = first.config if pick is None else pick.config
    curve = ", ".join(_speed_at(per_load, config, r.concurrency) for r in picks)
    if len(prefix_on) == len(picks):
        reason = (
            f"Speculate with {config.key} at every load tested ({curve}); the break-even "
            f"lies above concurrency {picks[-1].concurrency}, the highest tested."
        )
        return MixedLoad(KIND_SPECULATE, None, config, reason, on, off, score)
    stop = picks[len(prefix_on)]
    measured = [r.concurrency for r in picks]
    crossing = _crossing(per_load, config, prefix_on[-1], stop.concurrency, measured)
    reason = (
        f"Speculate with {config.key} ({curve}) below {crossing.phrase()}; above that, "
        "launch without speculation: at concurrency "
        f"{stop.concurrency} no tree beats the baseline beyond noise"
        + (_best_loss(stop) if stop.best_speculative else "")
        + "."
    )
    return MixedLoad(KIND_SPECULATE_BELOW, crossing.point, config, reason, on, off, score, crossing)


def _off(picks: Sequence[LoadPick], host_staged: bool, on: list[int], off: list[int]) -> MixedLoad:
    first = picks[0]
    why = (
        "all-reduce is staged through host memory (no GPU peer-to-peer), so the draft and "
        "verify collectives cost more than the accepted tokens save"
        if host_staged
        else "no tree beats the baseline beyond noise"
    )
    loss = _best_loss(first) if first.best_speculative else ""
    also = (
        f" It pays only at concurrency {', '.join(str(c) for c in on)}, above the lowest "
        "load tested; a server that sees light load would lose."
        if on
        else ""
    )
    reason = f"Turn speculation off: at concurrency {first.concurrency} {why}{loss}.{also}"
    return MixedLoad(KIND_OFF, None, None, reason, on, off)


def _speed_at(per_load: Mapping[int, Sequence[Candidate]], config: SpecConfig, c: int) -> str:
    cand = find_candidate(per_load, config, c)
    if cand is None:
        return f"not tested at {c}"
    return f"{cand.speedup:.2f}x [{cand.ci[0]:.2f}-{cand.ci[1]:.2f}] at {c}"


def _best_loss(pick: LoadPick) -> str:
    best = pick.best_speculative
    assert best is not None
    return (
        f" (the best tree, {best.key}, reaches {best.speedup:.2f}x "
        f"[{best.ci[0]:.2f}-{best.ci[1]:.2f}])"
    )


def _crossing(
    per_load: Mapping[int, Sequence[Candidate]],
    config: SpecConfig,
    low_c: int,
    high_c: int,
    measured: Sequence[int],
) -> BreakEven:
    """Break-even of ``config`` between two measured loads, with its interval; the
    envelope where ``config`` was not measured."""
    low = find_candidate(per_load, config, low_c) or per_load[low_c][0]
    high_cands = per_load.get(high_c) or ()
    high = find_candidate(per_load, config, high_c) or (high_cands[0] if high_cands else None)
    low_interval = (low.speedup, *low.ci)
    if high is None:
        # No tree completed at high_c: nothing places the crossing above low_c.
        return locate_break_even(low_c, low_interval, high_c, None, measured)
    return locate_break_even(low_c, low_interval, high_c, (high.speedup, *high.ci), measured)


__all__ = [
    "LoadPick",
    "MixedLoad",
    "mixed_load",
    "one_server_at",
    "pick_at",
    "robust_pick",
    "within_noise",
]
