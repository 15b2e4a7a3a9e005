"""Several runs side by side, only when their numbers mean the same thing.

Two runs are comparable when they replayed the same workload (target, draft, prompts,
token budget, sampling): then the NVLink box against the PCIe box, or one engine version
against the next, is a fair comparison of speedups. Hardware, engine and backend are
what a side-by-side is for, so they may differ; each column says what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from specbench.errors import NotComparableError


class WorkloadLike(Protocol):
    """What the workload fingerprint of a run offers (rundir's WorkloadFingerprint)."""

    @property
    def digest(self) -> str: ...

    def differences(self, other: Any) -> list[str]: ...


def check_comparable(runs: Sequence[tuple[str, WorkloadLike]]) -> None:
    """Raise NotComparableError naming the first run whose workload differs from the first."""
    if len(runs) < 2:
        return
    first_name, first = runs[0]
    for name, workload in runs[1:]:
        diffs = first.differences(workload)
        if diffs:
            raise NotComparableError(
                f"{name} is not comparable with {first_name}: the workload differs "
                f"({'; '.join(diffs)}); side-by-side reports need the same target, draft, "
                "prompts and token budget"
            )


def column_titles(labels: Sequence[str]) -> list[str]:
    """Short distinct column titles; a repeated label gets its position appended."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if labels.count(label) == 1 else f"{label} (#{seen[label]})")
    return out


__all__ = ["WorkloadLike", "check_comparable", "column_titles"]
