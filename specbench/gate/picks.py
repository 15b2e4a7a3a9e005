"""Did the recommended flags change between the two runs, and does that matter?

A gate that passes while the sweep's answer flipped (``--seed 1`` turns 2-1-3 into
2-8-4) hides the one thing a deployer acts on. The change alone is not news: two trees
within noise of each other trade places from run to run. So the gate also asks the
candidate run whether the baseline's pick still does as well as the new one: it
matters only when, at some load where the candidate speculates, the old pick's interval
lies wholly below the new pick's (the two estimates differ beyond their noise), or
when the kind of advice changed (speculate everywhere, only below a load, or not at
all), because then the launch line a deployer uses changes with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Interval = tuple[float, float, float]  # speedup, low, high


@dataclass(frozen=True)
class RecommendedPick:
    """What a run tells the user to launch: the verdict's kind and its tree."""

    kind: str
    config_key: str | None  # None: launch without speculation
    speculate_at: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """The pick as a user reads it: a tree key, or no speculation."""
        return self.config_key or "no speculation"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config_key": self.config_key,
            "speculate_at": list(self.speculate_at),
        }


def read_pick(data: Mapping[str, Any] | None) -> RecommendedPick | None:
    """The verdict of a results.json (or a baseline file's copy of it); None when absent.

    Read leniently: older runs have no verdict, and a malformed one must not stop a gate
    whose job is the metrics; the pick is then simply not compared.
    """
    if not isinstance(data, Mapping):
        return None
    kind = data.get("kind")
    if not isinstance(kind, str):
        return None
    key = data.get("config_key")
    config = data.get("config")
    if key is None and isinstance(config, Mapping):
        key = config.get("key")
    loads = data.get("speculate_at")
    speculate_at = tuple(
        c for c in (loads if isinstance(loads, list) else []) if isinstance(c, int)
    )
    return RecommendedPick(kind, key if isinstance(key, str) else None, speculate_at)


@dataclass(frozen=True)
class PickComparison:
    """The two runs' picks and, when they differ, whether the difference is beyond noise."""

    baseline: RecommendedPick
    candidate: RecommendedPick
    #: True: the old pick is worse beyond noise; False: within noise; None: cannot tell.
    matters: bool | None
    detail: str

    @property
    def changed(self) -> bool:
        return (self.baseline.kind, self.baseline.config_key) != (
            self.candidate.kind,
            self.candidate.config_key,
        )

    def line(self) -> str:
        """One line for every output format."""
        if not self.changed:
            return f"recommendation unchanged: {self.candidate.label} in both runs"
        head = (
            f"recommendation changed: {self.baseline.label} ({self.baseline.kind}) -> "
            f"{self.candidate.label} ({self.candidate.kind})"
        )
        return f"{head}; {self.detail}"


def compare_picks(
    baseline: RecommendedPick,
    candidate: RecommendedPick,
    intervals: Mapping[tuple[str, int], Interval],
) -> PickComparison:
    """Compare the picks; ``intervals`` are the candidate's speedups by (config, load)."""
    if (baseline.kind, baseline.config_key) == (candidate.kind, candidate.config_key):
        return PickComparison(baseline, candidate, False, "")
    old, new = baseline.config_key, candidate.config_key
    if old is None or new is None:
        which = "baseline" if old is None else "candidate"
        return PickComparison(
            baseline,
            candidate,
            True,
            f"the {which} says to launch without speculation, the other to speculate: "
            "that changes the launch line",
        )
    if baseline.kind != candidate.kind:
        loads_text = ", ".join(map(str, candidate.speculate_at)) or "no load"
        return PickComparison(
            baseline,
            candidate,
            True,
            f"the advice changed from {baseline.kind} to {candidate.kind} (the candidate "
            f"pays at concurrency {loads_text})",
        )
    loads = candidate.speculate_at or tuple(sorted({c for k, c in intervals if k == new}))
    return _judge(baseline, candidate, old, new, loads, intervals)


def _judge(
    baseline: RecommendedPick,
    candidate: RecommendedPick,
    old: str,
    new: str,
    loads: Sequence[int],
    intervals: Mapping[tuple[str, int], Interval],
) -> PickComparison:
    missing = [c for c in loads if (old, c) not in intervals or (new, c) not in intervals]
    if not loads or missing:
        where = ", ".join(map(str, missing or loads)) or "any load"
        return PickComparison(
            baseline,
            candidate,
            None,
            f"cannot tell whether it matters: the candidate did not measure both at "
            f"concurrency {where} (gate them with --strategy fixed --config "
            f"{old.replace('-', ',')};{new.replace('-', ',')})",
        )

    def pair(c: int) -> str:
        return f"{_show(intervals[(old, c)])} vs {_show(intervals[(new, c)])} at {c}"

    worse = [c for c in loads if intervals[(old, c)][2] < intervals[(new, c)][1]]
    if worse:
        return PickComparison(
            baseline,
            candidate,
            True,
            f"beyond noise: in the candidate {old} is slower than {new} "
            + "; ".join(pair(c) for c in worse),
        )
    return PickComparison(
        baseline,
        candidate,
        False,
        f"within noise: in the candidate {old} and {new} overlap at every load "
        f"({'; '.join(pair(c) for c in loads)}), so either launch line does as well",
    )


def _show(interval: Interval) -> str:
    speed, low, high = interval
    return f"{speed:.2f}x [{low:.2f}-{high:.2f}]"


__all__ = ["PickComparison", "RecommendedPick", "compare_picks", "read_pick"]
