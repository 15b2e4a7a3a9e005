"""The decision in words: one headline sentence, why this tree, and the defaults compared.

The headline says what to launch, how sure (the interval), against what the user would
otherwise launch (the model card, the engine's automatic choice) and what it costs (time
to first token rises: the draft runs and a tree is verified before the first token is
streamed). When tuning buys nothing measurable over the automatic choice, that is the
headline: it is the finding a deployer most needs, and the least expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specbench.verdict.candidates import (
    CI_MODEL,
    KIND_NO_FIT,
    KIND_OFF,
    KIND_SPECULATE,
    Candidate,
    canonical_tree,
    format_concurrency,
)
from specbench.verdict.defaults import AUTOMATIC, DefaultComparison

if TYPE_CHECKING:
    from specbench.verdict.decision import Decision

#: When no speedup exists at all (no baseline, nothing completed): off until measured.
UNKNOWN_HEADLINE = "No verdict yet: no speedup could be computed; keep speculation off."


@dataclass
class Headline:
    """The sentences every surface shows first, in this order."""

    text: str
    #: Why this tree rather than a faster-looking one (cheapest within noise), plainly.
    pick_reason: str = ""
    #: What time to first token does under the pick.
    cost: str = ""
    #: One sentence per configuration the user would otherwise launch.
    notes: list[str] = field(default_factory=list)
    tuning_buys_nothing: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "pick_reason": self.pick_reason,
            "cost": self.cost,
            "notes": list(self.notes),
            "tuning_buys_nothing": self.tuning_buys_nothing,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Headline:
        return cls(
            str(data.get("text") or ""),
            str(data.get("pick_reason") or ""),
            str(data.get("cost") or ""),
            [str(n) for n in data.get("notes") or ()],
            bool(data.get("tuning_buys_nothing")),
        )


def interval_text(cand: Candidate) -> str:
    return f"{cand.speedup:.2f}x [{cand.ci[0]:.2f}-{cand.ci[1]:.2f}]"


def write_headline(d: Decision, ttft: tuple[int, float, float] | None) -> Headline:
    """The headline of a finished decision; ``ttft`` is (load, baseline, pick) p50 ms."""
    notes = default_notes(d)
    if d.kind == KIND_NO_FIT:
        return Headline(_no_fit(d), notes=notes)
    if not d.known:
        return Headline(UNKNOWN_HEADLINE, notes=notes)
    if d.kind == KIND_OFF or d.config is None:
        return Headline(_off(d), notes=notes)
    c0 = min(d.speculate_at) if d.speculate_at else d.primary
    pick = d.candidate(d.config, c0)
    where = (
        f"at every load tested (up to {max(d.concurrencies)} concurrent requests)"
        if d.kind == KIND_SPECULATE
        else f"below about {_break_even_text(d, c0)} concurrent requests and no speculation above"
    )
    cost = _cost(ttft, d.simulated)
    if pick is None:
        return Headline(f"Launch {d.config.key} {where}.", cost=cost, notes=notes)
    auto = _automatic_as_good(d)
    how = "the model's +-10%" if pick.ci_source == CI_MODEL else "95% interval"
    sure = f"{interval_text(pick)} at concurrency {c0} ({how})"
    if auto is not None and canonical_tree(auto.config) == d.config:
        text = (
            f"Tuning buys nothing: the pick is the {auto.name} itself ({d.config.key}, "
            f"{sure}), what SGLang runs without --speculative-num-* flags; speculate "
            f"{where}; {cost}"
        )
    elif auto is not None:
        point = auto.points.get(c0)
        text = (
            f"Tuning buys nothing over the {auto.name} ({auto.config.key}"
            + (f", {interval_text(point)}" if point is not None else "")
            + f"): the tuned {d.config.key} reaches {sure}, within noise of it wherever "
            f"speculation pays; speculate {where}; {cost}"
        )
    else:
        text = f"Launch {d.config.key} {where}: {sure}, against {_against(d, c0)}; {cost}"
    return Headline(text, _pick_reason(d), cost, notes, auto is not None)


def _break_even_text(d: Decision, fallback: int) -> str:
    """``5 (4-7)`` or ``5.6-8+`` where the interval is known, else the point."""
    if d.break_even_range is not None:
        return d.break_even_range.range_text()
    return format_concurrency(d.break_even or fallback)


def _no_fit(d: Decision) -> str:
    m = d.memory
    if m is None:
        return "Does not fit in GPU memory: nothing measured here can be launched as run."
    need = (
        f"{m.needed_gib:.1f} GiB per GPU at TP {m.tp} ({m.weights_gib:.1f} GiB of weights) "
        f"against {m.usable_gib:.0f} GiB usable on a {m.gpu}"
    )
    if m.min_tp is None:
        return f"Does not fit: {need}, and no TP on this box fits; use larger GPUs."
    rerun = f": {d.launch}" if d.launch else ""
    return f"Does not fit: {need}; measure at TP {m.min_tp} instead{rerun}."


def _off(d: Decision) -> str:
    first = d.loads[0] if d.loads else None
    best = first.best_speculative if first is not None else None
    if first is None or best is None:
        return "Launch without speculation: no tree completed at the lowest load tested."
    also = [
        f"{x.name}'s {x.config.key} reaches {interval_text(p)}"
        for x in d.defaults
        if (p := x.points.get(first.concurrency)) is not None and x.config != best.config
    ]
    return (
        f"Launch without speculation: at concurrency {first.concurrency} no tree beats it "
        f"beyond noise (the best, {best.key}, reaches {interval_text(best)}, 95% interval"
        + ("; " + "; ".join(also) if also else "")
        + ")."
    )


def _against(d: Decision, c: int) -> str:
    parts = []
    for x in d.defaults:
        point = x.points.get(c)
        if point is None:
            parts.append(f"{x.name}'s {x.config.key} (not tested)")
        elif d.config is not None and point.config == d.config:
            parts.append(f"{x.name}'s {x.config.key} (the same tree)")
        else:
            parts.append(f"{x.name}'s {x.config.key} at {interval_text(point)}")
    return " and ".join(parts) if parts else "no speculation (1.00x)"


def _cost(ttft: tuple[int, float, float] | None, simulated: bool) -> str:
    if ttft is None:
        return (
            "time to first token rises with speculation (the draft runs before the first "
            "token), not measured here."
        )
    c, base, spec = ttft
    change = (spec / base - 1.0) * 100.0 if base > 0 else 0.0
    verb = "rises" if change >= 1.0 else "does not rise measurably"
    sim = " (SIMULATED)" if simulated else ""
    return (
        f"time to first token {verb}: {base:.0f} ms -> {spec:.0f} ms p50 ({change:+.0f}%) "
        f"at concurrency {c}{sim}."
    )


def _automatic_as_good(d: Decision) -> DefaultComparison | None:
    """The engine's automatic choice when it is within noise of the pick at every load
    where the decision speculates (then tuning bought nothing measurable)."""
    if d.config is None or not d.speculate_at:
        return None
    for x in d.defaults:
        if x.name != AUTOMATIC:
            continue
        ok = True
        for c in d.speculate_at:
            point, pick = x.points.get(c), d.candidate(d.config, c)
            if point is None or pick is None or not point.pays or point.speedup < pick.ci[0]:
                ok = False
        if ok:
            return x
    return None


def _pick_reason(d: Decision) -> str:
    """Why the pick and not a faster-looking tree: cheapest within noise at the lowest
    load it is run at, and what a server for one load alone would run instead."""
    if d.config is None or not d.speculate_at:
        return ""
    c = min(d.speculate_at)
    load = next((p for p in d.loads if p.concurrency == c), None)
    parts = []
    if load is not None and load.config == d.config and load.dedicated is None:
        if load.fastest is None:
            parts.append(f"{d.config.key} is the fastest tree at concurrency {c}.")
        else:
            parts.append(
                f"{d.config.key} is the cheapest of the {len(load.equivalent) + 1} trees within "
                f"noise of the fastest at concurrency {c} ({load.fastest.key}, "
                f"{interval_text(load.fastest)}): the faster-looking trees gain less than the "
                f"measurement can tell apart and verify more tokens per step "
                f"({load.fastest.config.num_draft_tokens} against {d.config.num_draft_tokens})."
            )
    dedicated = [p for p in d.loads if p.dedicated is not None]
    if dedicated:
        alone = ", ".join(
            f"{p.dedicated.key} at concurrency {p.concurrency} ({interval_text(p.dedicated)})"
            for p in dedicated
            if p.dedicated is not None
        )
        worst = (d.worst_fraction_of_best or 0.0) * 100
        parts.append(
            f"A server for one load alone would run {alone}; one server for mixed load keeps "
            f"{d.config.key}, which reaches at least {worst:.0f}% of the best tree at every "
            "load it is launched for."
        )
    return " ".join(parts)


def default_notes(d: Decision) -> list[str]:
    """What the comparison with each default says, in words.

    A default that loses to no speculation is the most persuasive fact of a slow box; a
    default within noise of the pick wherever speculation pays says tuning buys nothing
    measurable there, which is as worth knowing.
    """
    notes = []
    for x in d.defaults:
        name = f"The {x.name}'s {x.config.key}"
        points = {c: p for c, p in x.points.items() if p is not None}
        losing = [c for c, p in points.items() if p.ci[1] < 1.0]
        if losing:
            notes.append(
                f"{name} is slower than no speculation at concurrency "
                f"{', '.join(str(c) for c in losing)}."
            )
            continue
        paying = [p for p in d.loads if p.speedup_ci is not None and p.config is not None]
        if paying and all(
            p.concurrency in points
            and p.speedup_ci is not None
            and points[p.concurrency].speedup >= p.speedup_ci[0]
            for p in paying
        ):
            notes.append(
                f"{name} is within noise of the per-load pick wherever speculation pays: "
                "tuning buys nothing measurable over it on this machine."
            )
            continue
        faster = [
            p.concurrency
            for p in paying
            if p.speedup_ci is not None
            and p.concurrency in points
            and points[p.concurrency].ci[0] > p.speedup_ci[1]
        ]
        if faster and d.config is not None:
            notes.append(
                f"{name} is faster than {d.config.key} at concurrency "
                f"{', '.join(str(c) for c in faster)} but not at every load the pick is "
                "launched for: one server for mixed load gives that up."
            )
    return notes


__all__ = ["UNKNOWN_HEADLINE", "Headline", "default_notes", "interval_text", "write_headline"]
