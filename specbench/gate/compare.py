"""The CI regression gate: did tau or speed really drop between a baseline and a candidate?

CI re-runs a fixed set of configurations whenever the draft checkpoint, the SGLang
version or the driver changes. Such runs are noisy, so a metric fails only when its
change is both past a threshold and significant on the per-request samples
(see :mod:`specbench.gate.stats`). Everything here is plain functions returning
dataclasses; the CLI (``specbench gate``) only parses flags and prints.

What is compared, per (configuration, concurrency) present in both runs:

- ``tau``: per-request completion_tokens / spec_verify_ct. Change = ratio of medians.
  Significance is tested on requests paired by prompt when both sides know the prompt
  ids (see :mod:`specbench.gate.stats`).
- ``output_tokens_per_s``: per-request decode speed (RequestRecord.output_tokens_per_s).
  Change = ratio of medians. The no-speculation baseline rows are compared too, because
  a driver that slows every decode is a regression as well.
- ``speedup``: the aggregate speedup over the same run's no-speculation baseline at that
  concurrency (the number the report shows). Change = ratio of the aggregates; its
  significance is tested on per-request speedups (each request's tokens/s divided by the
  median tokens/s of its own run's baseline requests). Without those baseline samples on
  both sides the row is informational only.

A baseline may be a run directory or a compact baseline file written by
:func:`save_baseline` (kind ``specbench.gate-baseline``) meant to be committed; reading
both lives in :mod:`specbench.gate.inputs` and is re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from specbench.errors import BadInputError, NotComparableError
from specbench.gate.hardware import describe_hardware, hardware_differences
from specbench.gate.inputs import (
    Cell,
    CellSamples,
    GateSide,
    cell_sort_key,
    load_side,
)
from specbench.gate.picks import PickComparison, compare_picks
from specbench.gate.rates import rate_rows
from specbench.gate.results import (
    METRIC_COMPLETED,
    METRIC_LABELS,
    METRIC_SPEEDUP,
    METRIC_TAU,
    METRIC_TOKENS_PER_S,
    GateOptions,
    GateResult,
    GateRow,
    Status,
    shorten_difference,
)
from specbench.gate.stats import METHOD_NONE, compare_paired, median
from specbench.spec_config import BASELINE_KEY

# ------------------------------------------------------------------------ comparison


def run_gate(
    baseline: Path | str, candidate: Path | str, options: GateOptions | None = None
) -> GateResult:
    """Load both sides and compare them (see :func:`compare`)."""
    options = options or GateOptions()
    options.validate()
    return compare(load_side(baseline), load_side(candidate), options)


def compare(
    baseline: GateSide, candidate: GateSide, options: GateOptions | None = None
) -> GateResult:
    """Compare every metric of every cell both sides have.

    Raises NotComparableError when the hardware or the workloads differ (unless
    ``options.force``) and BadInputError when a requested configuration or concurrency
    is not in the candidate or nothing at all can be compared.
    """
    options = options or GateOptions()
    options.validate()
    differences = baseline.workload.differences(candidate.workload)
    hardware = hardware_differences(baseline.hardware, candidate.hardware)
    if (differences or hardware) and not options.force:
        raise NotComparableError(_not_comparable(baseline, candidate, hardware, differences))
    _check_requested(candidate, options)

    wanted_keys = set(options.configs)
    wanted_conc = set(options.concurrencies)

    def selected(cell: Cell) -> bool:
        key, conc = cell
        if wanted_keys and key not in wanted_keys and key != BASELINE_KEY:
            return False
        return not (wanted_conc and conc not in wanted_conc)

    rows: list[GateRow] = []
    not_compared: list[str] = []
    all_cells = sorted(set(baseline.cells) | set(candidate.cells), key=cell_sort_key)
    for cell in filter(selected, all_cells):
        key, conc = cell
        if cell not in candidate.cells:
            if cell in candidate.failed_cells:
                rows.append(_failed_row(key, conc, candidate.failed_cells[cell], options))
            else:
                not_compared.append(f"{key} c={conc}: only in the baseline")
            continue
        if cell not in baseline.cells:
            not_compared.append(f"{key} c={conc}: only in the candidate")
            continue
        new_rows, skipped = _compare_cell(baseline, candidate, cell, options)
        rows.extend(new_rows)
        not_compared.extend(skipped)
    rows.extend(rate_rows(baseline.rates, candidate.rates, options))
    # Only no-speculation rows left means no configuration was compared at all.
    if not any(r.config_key != BASELINE_KEY for r in rows):
        raise BadInputError(
            f"nothing to compare between {baseline.source} "
            f"(configs {', '.join(baseline.config_keys) or 'none'}; "
            f"concurrency {', '.join(map(str, baseline.concurrencies)) or 'none'}) and "
            f"{candidate.source} (configs {', '.join(candidate.config_keys) or 'none'}; "
            f"concurrency {', '.join(map(str, candidate.concurrencies)) or 'none'})"
            + (f": {'; '.join(not_compared)}" if not_compared else "")
        )
    return GateResult(
        rows=rows,
        not_compared=not_compared,
        baseline=baseline.summary(),
        candidate=candidate.summary(),
        options=options,
        workload_differences=differences,
        hardware_differences=hardware,
        forced=bool(differences or hardware),
        picks=_picks(baseline, candidate),
    )


def _not_comparable(
    baseline: GateSide, candidate: GateSide, hardware: list[str], workload: list[str]
) -> str:
    """One line: what differs (hardware named on both sides first) and how to go on."""
    reasons = []
    if hardware:
        reasons.append(
            f"{baseline.source} ran on {describe_hardware(baseline.hardware)} and "
            f"{candidate.source} on {describe_hardware(candidate.hardware)}"
        )
    if workload:
        reasons.append(
            ("they" if hardware else f"{baseline.source} and {candidate.source}")
            + " ran different workloads ("
            + "; ".join(shorten_difference(d) for d in workload)
            + ")"
        )
    return "not comparable: " + "; ".join(reasons) + "; pass --force to compare anyway"


def _picks(baseline: GateSide, candidate: GateSide) -> PickComparison | None:
    """The two runs' recommendations compared; None when either run has no verdict."""
    if baseline.pick is None or candidate.pick is None:
        return None
    return compare_picks(baseline.pick, candidate.pick, candidate.speedup_intervals())


def _check_requested(candidate: GateSide, options: GateOptions) -> None:
    missing = [k for k in options.configs if k not in candidate.config_keys]
    if missing:
        raise BadInputError(
            f"--config {', '.join(missing)}: not in the candidate {candidate.source} "
            f"(it has: {', '.join(k for k in candidate.config_keys if k != BASELINE_KEY) or 'none'})"
        )
    missing_c = [c for c in options.concurrencies if c not in candidate.concurrencies]
    if missing_c:
        raise BadInputError(
            f"--concurrency {', '.join(map(str, missing_c))}: not in the candidate "
            f"{candidate.source} (it has: {', '.join(map(str, candidate.concurrencies))})"
        )


def _compare_cell(
    baseline: GateSide, candidate: GateSide, cell: Cell, options: GateOptions
) -> tuple[list[GateRow], list[str]]:
    key, conc = cell
    base, cand = baseline.cells[cell], candidate.cells[cell]
    rows: list[GateRow] = []
    skipped: list[str] = []

    def sampled(metric: str, b: _Samples, c: _Samples) -> None:
        if not b.values or not c.values:
            side = "baseline" if not b.values else "candidate"
            skipped.append(
                f"{METRIC_LABELS[metric]} {key} c={conc}: no per-request samples in the {side}"
            )
            return
        rows.append(
            _evaluate(
                metric,
                key,
                conc,
                b,
                c,
                median(b.values),
                median(c.values),
                options,
                statistic="median",
            )
        )

    if key != BASELINE_KEY:
        sampled(
            METRIC_TAU,
            _Samples(base.tau, base.tau_prompt_ids),
            _Samples(cand.tau, cand.tau_prompt_ids),
        )
    sampled(METRIC_TOKENS_PER_S, _tokens_per_s(base), _tokens_per_s(cand))
    if key == BASELINE_KEY:
        return rows, skipped

    if base.speedup is None or cand.speedup is None:
        side = "baseline" if base.speedup is None else "candidate"
        skipped.append(
            f"speedup {key} c={conc}: the {side} has no no-speculation baseline at this concurrency"
        )
        return rows, skipped
    b_samples = _speedup_samples(baseline, cell)
    c_samples = _speedup_samples(candidate, cell)
    if b_samples.values and c_samples.values:
        rows.append(
            _evaluate(
                METRIC_SPEEDUP,
                key,
                conc,
                b_samples,
                c_samples,
                base.speedup,
                cand.speedup,
                options,
                statistic="aggregate",
            )
        )
    else:
        side = "baseline" if not b_samples.values else "candidate"
        rows.append(
            _info_row(
                METRIC_SPEEDUP,
                key,
                conc,
                base.speedup,
                cand.speedup,
                options,
                note=f"informational: no per-request baseline samples in the {side}",
            )
        )
    return rows, skipped


@dataclass(frozen=True)
class _Samples:
    """Per-request values with their prompt ids (empty ids: unknown, test unpaired)."""

    values: Sequence[float]
    prompt_ids: Sequence[str] = ()


def _tokens_per_s(cell: CellSamples) -> _Samples:
    return _Samples(cell.output_tokens_per_s, cell.output_tokens_per_s_prompt_ids)


def _speedup_samples(side: GateSide, cell: Cell) -> _Samples:
    """Per-request speedups: each request's tokens/s over the run's own baseline median."""
    base = side.cells.get((BASELINE_KEY, cell[1]))
    if base is None or not base.output_tokens_per_s:
        return _Samples(())
    reference = median(base.output_tokens_per_s)
    if not reference > 0:
        return _Samples(())
    mine = side.cells[cell]
    return _Samples(
        [x / reference for x in mine.output_tokens_per_s], mine.output_tokens_per_s_prompt_ids
    )


def _evaluate(
    metric: str,
    key: str,
    conc: int,
    base_samples: _Samples,
    cand_samples: _Samples,
    base_value: float,
    cand_value: float,
    options: GateOptions,
    *,
    statistic: str,
) -> GateRow:
    threshold = options.threshold(metric)
    if not (base_value > 0 and math.isfinite(base_value) and math.isfinite(cand_value)):
        return _info_row(
            metric,
            key,
            conc,
            base_value,
            cand_value,
            options,
            note="informational: the baseline value is not a positive number",
        )
    change = cand_value / base_value - 1.0
    sig = compare_paired(
        base_samples.values,
        base_samples.prompt_ids,
        cand_samples.values,
        cand_samples.prompt_ids,
        alpha=options.alpha,
    )
    note = ""
    if change < -threshold:
        status = Status.REGRESSION if sig.drop else Status.INSIGNIFICANT
    elif change > threshold:
        status = Status.IMPROVED if sig.rise else Status.INSIGNIFICANT
    else:
        status = Status.PASS
    if status is Status.INSIGNIFICANT:
        note = (
            "too few samples for any test"
            if sig.method == METHOD_NONE
            else f"past the {threshold:.1%} threshold but not significant at alpha={options.alpha:g}"
        )
    return GateRow(
        metric=metric,
        config_key=key,
        concurrency=conc,
        baseline_value=base_value,
        candidate_value=cand_value,
        change=change,
        threshold=threshold,
        status=status,
        method=sig.method,
        p_value=sig.p_value_for(change),
        n_baseline=len(base_samples.values),
        n_candidate=len(cand_samples.values),
        statistic=statistic,
        ci_baseline=sig.ci_baseline,
        ci_candidate=sig.ci_candidate,
        note=note,
    )


def _failed_row(key: str, conc: int, error: str, options: GateOptions) -> GateRow:
    """The candidate could not run a configuration the baseline measured: always fails."""
    return GateRow(
        metric=METRIC_COMPLETED,
        config_key=key,
        concurrency=conc,
        baseline_value=1.0,
        candidate_value=0.0,
        change=-1.0,
        threshold=0.0,
        status=Status.REGRESSION,
        method="",
        p_value=None,
        n_baseline=0,
        n_candidate=0,
        statistic="aggregate",
        note=f"the candidate's run failed: {error[:300]}",
    )


def _info_row(
    metric: str,
    key: str,
    conc: int,
    base_value: float,
    cand_value: float,
    options: GateOptions,
    *,
    note: str,
) -> GateRow:
    change = cand_value / base_value - 1.0 if base_value else math.nan
    return GateRow(
        metric=metric,
        config_key=key,
        concurrency=conc,
        baseline_value=base_value,
        candidate_value=cand_value,
        change=change,
        threshold=options.threshold(metric),
        status=Status.INFO,
        method="",
        p_value=None,
        n_baseline=0,
        n_candidate=0,
        statistic="aggregate",
        note=note,
    )


__all__ = ["compare", "run_gate"]
