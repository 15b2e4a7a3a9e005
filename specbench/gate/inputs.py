"""Reading the two sides of a gate: run directories and committed baseline files.

Both become a GateSide holding per-request samples per (configuration, concurrency),
so the comparison never cares where the numbers came from. Hand-edited files are
expected (baselines are committed and reviewed), so every field the gate computes with
is type-checked here and a bad one is named with its file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from specbench import __version__
from specbench.errors import BadInputError, FileFormatError
from specbench.gate.picks import RecommendedPick, read_pick
from specbench.gate.stats import median
from specbench.rundir.layout import (
    MANIFEST_KIND,
    RESULTS_KIND,
    STATE_COMPLETE,
    STATE_FAILED,
    RunDirectory,
    WorkloadFingerprint,
)
from specbench.rundir.plausible import check_values
from specbench.rundir.records import RequestRecord
from specbench.rundir.trials import speedup
from specbench.schema import read_json, require, write_json
from specbench.spec_config import BASELINE_KEY

GATE_BASELINE_KIND = "specbench.gate-baseline"

#: Significant digits kept in a baseline file: far below run-to-run noise, and it keeps
#: the committed file small and its diffs readable.
_SAMPLE_DIGITS = 6

Cell = tuple[str, int]


@dataclass(frozen=True)
class CellSamples:
    """Per-request samples of one (configuration, concurrency) of one run."""

    config_key: str
    concurrency: int
    tau: tuple[float, ...] = ()
    output_tokens_per_s: tuple[float, ...] = ()
    #: Prompt id of each sample above (same order), so the gate can pair the two runs by
    #: prompt; empty when unknown (baseline files written before the ids were kept).
    tau_prompt_ids: tuple[str, ...] = ()
    output_tokens_per_s_prompt_ids: tuple[str, ...] = ()
    #: Aggregate speedup over the run's own no-speculation baseline; None without one.
    speedup: float | None = None
    #: Aggregate output tokens/s over all streams (results.json), for the record.
    aggregate_tokens_per_s: float | None = None
    #: The speedup's interval from the trial rows (low, high); None when not recorded.
    speedup_ci: tuple[float, float] | None = None
    num_requests: int = 0
    num_errors: int = 0


@dataclass
class GateSide:
    """One side of a comparison, read from a run directory or a baseline file."""

    source: str
    origin: str  # "run" | "baseline-file"
    target: str
    backend: str
    simulated: bool
    hardware: dict[str, Any]
    workload: WorkloadFingerprint
    specbench_version: str
    created_at: str
    cells: dict[Cell, CellSamples] = field(default_factory=dict)
    #: Cells whose server run failed (a crash, not an interruption), with the error: a
    #: configuration that stops running at all must fail the gate, not vanish from it.
    failed_cells: dict[Cell, str] = field(default_factory=dict)
    #: What the run recommends launching (results.json "verdict"); None when unknown.
    pick: RecommendedPick | None = None
    #: results.json "rates" (the request-rate loads' rows and SLO-rates); None without.
    rates: dict[str, Any] | None = None

    def speedup_intervals(self) -> dict[Cell, tuple[float, float, float]]:
        """(speedup, low, high) of every cell with a recorded interval."""
        return {
            cell: (s.speedup, *s.speedup_ci)
            for cell, s in self.cells.items()
            if s.speedup is not None and s.speedup_ci is not None
        }

    @property
    def config_keys(self) -> list[str]:
        return sorted({key for key, _ in self.cells}, key=config_sort_key)

    @property
    def concurrencies(self) -> list[int]:
        return sorted({c for _, c in self.cells})

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "origin": self.origin,
            "target": self.target,
            "backend": self.backend,
            "simulated": self.simulated,
            "hardware": str(self.hardware.get("name", "")),
            "workload_digest": self.workload.digest,
            "specbench_version": self.specbench_version,
            "created_at": self.created_at,
        }


# --------------------------------------------------------------------------- loading


def load_side(path: Path | str) -> GateSide:
    """Read a run directory or a gate baseline file (a run's manifest/results file too)."""
    path = Path(path)
    if path.is_dir():
        return load_run_side(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such run directory or baseline file")
    data = read_json(path, kind="baseline file")
    kind = data.get("kind")
    if kind == GATE_BASELINE_KIND:
        return _side_from_baseline_file(path, data)
    if kind in (MANIFEST_KIND, RESULTS_KIND):
        return load_run_side(path.parent)
    raise FileFormatError(
        path,
        f"expected {GATE_BASELINE_KIND!r} (a file written by `specbench gate --save-baseline`)"
        f" or a run directory, found {kind!r}",
        field="kind",
    )


def load_run_side(path: Path | str) -> GateSide:
    """Per-request samples of every completed (configuration, concurrency) of a run."""
    run = RunDirectory(path)
    manifest = run.read_manifest()
    results = run.read_results()
    rows = _complete_rows(run.results_path, results["trials"])
    records = _read_records(run)

    cells: dict[Cell, CellSamples] = {}
    for cell, trial_rows in rows.items():
        trial_numbers = {t for t, _ in trial_rows}
        mine = [
            r
            for r in records.get(cell, [])
            if r.trial_number is None or r.trial_number in trial_numbers
        ]
        cells[cell] = CellSamples(
            config_key=cell[0],
            concurrency=cell[1],
            tau=tuple(t for r in mine if (t := r.tau) is not None),
            output_tokens_per_s=tuple(s for r in mine if (s := r.output_tokens_per_s) is not None),
            tau_prompt_ids=tuple(str(r.prompt_id) for r in mine if r.tau is not None),
            output_tokens_per_s_prompt_ids=tuple(
                str(r.prompt_id) for r in mine if r.output_tokens_per_s is not None
            ),
            speedup=_median_or_none([row.get("speedup") for _, row in trial_rows]),
            aggregate_tokens_per_s=_median_or_none(
                [row.get("output_tokens_per_s") for _, row in trial_rows]
            ),
            speedup_ci=_interval_or_none(trial_rows),
            num_requests=len(mine),
            num_errors=sum(1 for r in mine if not r.ok),
        )
    _fill_missing_speedups(cells)
    return GateSide(
        failed_cells=_failed_cells(results["trials"], cells),
        source=str(path),
        origin="run",
        target=manifest.target,
        backend=manifest.backend,
        simulated=bool(manifest.simulated or results.get("simulated")),
        hardware=dict(manifest.hardware),
        workload=manifest.workload,
        specbench_version=manifest.specbench_version,
        created_at=manifest.created_at,
        cells=cells,
        pick=read_pick(results.get("verdict")),
        rates=results.get("rates") if isinstance(results.get("rates"), dict) else None,
    )


def _interval_or_none(
    rows: Sequence[tuple[int | None, Mapping[str, Any]]],
) -> tuple[float, float] | None:
    """The median of the trial rows' interval bounds, or None when a row lacks one."""
    low = _median_or_none([row.get("speedup_ci_low") for _, row in rows])
    high = _median_or_none([row.get("speedup_ci_high") for _, row in rows])
    return None if low is None or high is None else (low, high)


def _complete_rows(
    path: Path, trials: Sequence[Mapping[str, Any]]
) -> dict[Cell, list[tuple[int | None, Mapping[str, Any]]]]:
    """Completed trial rows by cell, their numeric fields checked (hand edits happen)."""
    out: dict[Cell, list[tuple[int | None, Mapping[str, Any]]]] = {}
    for index, row in enumerate(trials):
        if row["state"] != STATE_COMPLETE:
            continue
        where = f"{path}: trials[{index}]"
        for name in ("speedup", "output_tokens_per_s", "tau"):
            value = row.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise FileFormatError(where, "expected a number or null", field=name)
        trial_number = row.get("trial_number")
        if trial_number is not None:
            trial_number = require(where, row, "trial_number", int)
        cell = (str(row["config_key"]), int(row["concurrency"]))
        out.setdefault(cell, []).append((trial_number, row))
    return out


def _failed_cells(
    trials: Sequence[Mapping[str, Any]], complete: Mapping[Cell, CellSamples]
) -> dict[Cell, str]:
    """Cells a trial failed at and none completed.

    Only failures of a run that really happened count (they carry its ``duration_s``):
    an interrupted or abandoned trial has none, because it was never measured, which is
    "not compared" rather than a regression.
    """
    out: dict[Cell, str] = {}
    for row in trials:
        concurrency = row.get("concurrency")
        duration = row.get("duration_s")
        if (
            row.get("state") != STATE_FAILED
            or not isinstance(concurrency, int)
            or not isinstance(duration, (int, float))
            or isinstance(duration, bool)
            or not math.isfinite(duration)
        ):
            continue
        cell = (str(row.get("config_key")), concurrency)
        if cell not in complete:
            out.setdefault(cell, " ".join(str(row.get("error") or "failed").split()))
    return out


def _read_records(run: RunDirectory) -> dict[Cell, list[RequestRecord]]:
    path = run.requests_path
    out: dict[Cell, list[RequestRecord]] = {}
    for index, record in enumerate(run.iter_requests(), start=1):
        _check_record(f"{path}: record {index}", record)
        out.setdefault((record.config_key, record.concurrency), []).append(record)
    return out


def _check_record(where: str, record: RequestRecord) -> None:
    """Types of the fields the gate computes with (from_dict checks only the counts)."""
    if record.spec_verify_ct is not None and not _is_int(record.spec_verify_ct):
        raise FileFormatError(where, "expected an integer or null", field="spec_verify_ct")
    for name in ("ttft_ms", "e2e_ms"):
        value = getattr(record, name)
        if value is not None and not _is_number(value):
            raise FileFormatError(where, "expected a number or null", field=name)
    if not isinstance(record.config_key, str):
        raise FileFormatError(where, "expected a string", field="config_key")
    if not _is_int(record.concurrency):
        raise FileFormatError(where, "expected an integer", field="concurrency")
    if record.trial_number is not None and not _is_int(record.trial_number):
        raise FileFormatError(where, "expected an integer or null", field="trial_number")
    if record.error is not None and not isinstance(record.error, str):
        raise FileFormatError(where, "expected a string or null", field="error")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _median_or_none(values: Iterable[object]) -> float | None:
    finite = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    finite = [v for v in finite if math.isfinite(v)]
    return median(finite) if finite else None


def _fill_missing_speedups(cells: dict[Cell, CellSamples]) -> None:
    """Speedup from aggregate tokens/s when a trial row lacks it but the run has a baseline."""
    for (key, concurrency), cell in list(cells.items()):
        if key == BASELINE_KEY or cell.speedup is not None:
            continue
        base = cells.get((BASELINE_KEY, concurrency))
        if base is None:
            continue
        value = speedup(cell.aggregate_tokens_per_s, base.aggregate_tokens_per_s)
        if value is not None:
            cells[(key, concurrency)] = _replace_speedup(cell, value)


def _replace_speedup(cell: CellSamples, speedup: float) -> CellSamples:
    return dataclasses.replace(cell, speedup=speedup)


# ---------------------------------------------------------------------- baseline file


def baseline_payload(side: GateSide, configs: Sequence[str] = ()) -> dict[str, Any]:
    """The compact, committable form of a run: its summary and per-request samples.

    The no-speculation baseline cells are always kept (speedup needs them), whatever
    ``configs`` selects.
    """
    wanted = set(configs)
    missing = sorted(wanted - set(side.config_keys))
    if missing:
        raise BadInputError(
            f"--config {', '.join(missing)}: not in {side.source} "
            f"(it has: {', '.join(side.config_keys) or 'nothing'})"
        )
    cells = []
    for (key, concurrency), cell in sorted(
        side.cells.items(), key=lambda item: cell_sort_key(item[0])
    ):
        if wanted and key not in wanted and key != BASELINE_KEY:
            continue
        cells.append(
            {
                "config_key": key,
                "concurrency": concurrency,
                "num_requests": cell.num_requests,
                "num_errors": cell.num_errors,
                "speedup": _round(cell.speedup),
                "output_tokens_per_s": _round(cell.aggregate_tokens_per_s),
                "tau_samples": [_round(x) for x in cell.tau],
                "output_tokens_per_s_samples": [_round(x) for x in cell.output_tokens_per_s],
                "tau_prompt_ids": list(cell.tau_prompt_ids),
                "output_tokens_per_s_prompt_ids": list(cell.output_tokens_per_s_prompt_ids),
            }
        )
    if not cells:
        raise BadInputError(f"{side.source}: no completed configuration to save as a baseline")
    recommendation = {} if side.pick is None else {"recommendation": side.pick.to_json()}
    return {
        "kind": GATE_BASELINE_KIND,
        "specbench_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": side.source,
        "manifest": {
            "target": side.target,
            "backend": side.backend,
            "simulated": side.simulated,
            "hardware": side.hardware,
            "workload": side.workload.to_json(),
            "specbench_version": side.specbench_version,
            "created_at": side.created_at,
        },
        "cells": cells,
        **recommendation,
    }


def save_baseline(run: Path | str, output: Path | str, configs: Sequence[str] = ()) -> Path:
    """Write the baseline file of a run (or re-filter an existing baseline file)."""
    side = load_side(run)
    output = Path(output)
    if output.is_dir():
        raise BadInputError(f"{output}: is a directory, expected a file name for the baseline")
    try:
        write_json(output, baseline_payload(side, configs))
    except OSError as exc:
        raise BadInputError(f"{output}: cannot write baseline: {exc.strerror or exc}") from None
    return output


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{_SAMPLE_DIGITS}g}")


def _side_from_baseline_file(path: Path, data: Mapping[str, Any]) -> GateSide:
    require(path, data, "specbench_version", str)
    check_values(path, data)
    manifest = require(path, data, "manifest", dict)
    where = f"{path}: manifest"
    workload = WorkloadFingerprint.from_json(
        f"{where}: workload", require(where, manifest, "workload", dict)
    )
    cells: dict[Cell, CellSamples] = {}
    for index, item in enumerate(require(path, data, "cells", list)):
        at = f"{path}: cells[{index}]"
        if not isinstance(item, dict):
            raise FileFormatError(path, "expected an object", field=f"cells[{index}]")
        key = require(at, item, "config_key", str)
        concurrency = require(at, item, "concurrency", int)
        if concurrency < 1:
            raise FileFormatError(at, "expected a positive integer", field="concurrency")
        if (key, concurrency) in cells:
            raise FileFormatError(at, f"duplicate cell {key} c={concurrency}", field="config_key")
        tau = _samples(at, item, "tau_samples")
        tokens_per_s = _samples(at, item, "output_tokens_per_s_samples")
        cells[(key, concurrency)] = CellSamples(
            config_key=key,
            concurrency=concurrency,
            tau=tau,
            output_tokens_per_s=tokens_per_s,
            tau_prompt_ids=_prompt_ids(at, item, "tau_prompt_ids", len(tau)),
            output_tokens_per_s_prompt_ids=_prompt_ids(
                at, item, "output_tokens_per_s_prompt_ids", len(tokens_per_s)
            ),
            speedup=_optional_number(at, item, "speedup"),
            aggregate_tokens_per_s=_optional_number(at, item, "output_tokens_per_s"),
            num_requests=_optional_int(at, item, "num_requests"),
            num_errors=_optional_int(at, item, "num_errors"),
        )
    return GateSide(
        source=str(path),
        origin="baseline-file",
        target=require(where, manifest, "target", str),
        backend=require(where, manifest, "backend", str),
        simulated=require(where, manifest, "simulated", bool),
        hardware=require(where, manifest, "hardware", dict),
        workload=workload,
        specbench_version=str(data["specbench_version"]),
        created_at=str(data.get("created_at", "")),
        cells=cells,
        pick=read_pick(data.get("recommendation")),
    )


def _samples(where: str, item: Mapping[str, Any], name: str) -> tuple[float, ...]:
    values = require(where, item, name, list)
    for i, value in enumerate(values):
        if not _is_number(value) or not math.isfinite(float(value)):
            raise FileFormatError(
                where, f"expected a finite number, found {value!r}", field=f"{name}[{i}]"
            )
    return tuple(float(v) for v in values)


def _prompt_ids(where: str, item: Mapping[str, Any], name: str, count: int) -> tuple[str, ...]:
    """Optional (older files lack it); when present, one string per sample."""
    if item.get(name) is None:
        return ()
    ids = require(where, item, name, list)
    if len(ids) != count or not all(isinstance(i, str) for i in ids):
        raise FileFormatError(
            where, f"expected {count} prompt-id strings, one per sample", field=name
        )
    return tuple(ids)


def _optional_number(where: str, item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise FileFormatError(where, "expected a number or null", field=name)
    return float(value)


def _optional_int(where: str, item: Mapping[str, Any], name: str) -> int:
    value = item.get(name, 0)
    if not _is_int(value) or value < 0:
        raise FileFormatError(where, "expected a non-negative integer", field=name)
    return int(value)


def config_sort_key(key: str) -> tuple[int, str]:
    return (0 if key == BASELINE_KEY else 1, key)


def cell_sort_key(cell: Cell) -> tuple[int, int, str]:
    key, conc = cell
    return (conc, *config_sort_key(key))


__all__ = [
    "GATE_BASELINE_KIND",
    "Cell",
    "CellSamples",
    "GateSide",
    "baseline_payload",
    "cell_sort_key",
    "config_sort_key",
    "load_run_side",
    "load_side",
    "save_baseline",
]
