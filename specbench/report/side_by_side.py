"""``specbench report RUN_A RUN_B ...``: several runs on one page, only if comparable.

Two runs are comparable when they replayed the same workload (target, draft, prompts,
token budget, sampling): then the NVLink box against the PCIe box, or one engine version
against the next, is a fair comparison of speedups. Hardware, engine and backend are
what a side-by-side is for, so they may differ; each column says what it is. The page
shows the same decision as each run's own report (one verdict section per run), as a
table per load across runs and one column per run; runs that replayed another workload
are refused (exit 2) before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from markupsafe import Markup

from specbench.errors import BadInputError, NotComparableError
from specbench.report.data import RunData, build_report_data, read_run
from specbench.report.html import asset, content_security_policy, environment
from specbench.report.verdict_views import LoadRow, VerdictScreen
from specbench.schema import write_text_atomic


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


@dataclass
class RunColumn:
    title: str
    path: str
    hardware: str
    backend: str
    simulated: bool
    screen: VerdictScreen
    by_load: dict[int, LoadRow]


def _column(title: str, run: RunData) -> RunColumn:
    data = build_report_data(run)
    hw = data.hardware
    screen = data.verdict_section.screen
    return RunColumn(
        title,
        str(run.path),
        f"{hw.name} ({hw.interconnect_class}" + (f", TP {hw.tp})" if hw.tp else ")"),
        run.manifest.backend,
        run.manifest.simulated,
        screen,
        {row.concurrency: row for row in screen.loads},
    )


def _titles(runs: Sequence[RunData]) -> list[str]:
    labels = [str(r.manifest.hardware.get("name") or r.path.name) for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{label} / {r.path.name}" for label, r in zip(labels, runs, strict=True)]
    return column_titles(labels)


def render_side_by_side(run_dirs: Sequence[Path | str], output: Path | str | None) -> Path:
    """Write one HTML page comparing ``run_dirs``; NotComparableError when they differ."""
    runs = [read_run(p) for p in run_dirs]
    check_comparable([(str(r.path), r.manifest.workload) for r in runs])
    target = Path(output) if output is not None else Path(run_dirs[0]) / "comparison.html"
    if target.is_dir():
        raise BadInputError(f"{target}: is a directory; give a file name with -o")
    columns = [_column(t, r) for t, r in zip(_titles(runs), runs, strict=True)]
    concurrencies = sorted({c for col in columns for c in col.by_load})
    w = runs[0].manifest.workload
    script = asset("report.js")
    html = (
        environment()
        .get_template("compare.html")
        .render(
            runs=columns,
            concurrencies=concurrencies,
            target=runs[0].manifest.target,
            workload=(
                f"{w.num_prompts} prompts from {w.dataset}, {w.max_new_tokens} new tokens, "
                f"fingerprint {w.digest}"
            ),
            any_sim=any(c.simulated for c in columns),
            css=Markup(asset("report.css")),
            js=Markup(script),
            csp=content_security_policy(script),
        )
    )
    write_text_atomic(target, html)
    return target


__all__ = [
    "RunColumn",
    "WorkloadLike",
    "check_comparable",
    "column_titles",
    "render_side_by_side",
]
