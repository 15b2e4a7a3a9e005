"""The gate's decisions on the golden runs, through the plain library functions."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from specbench.errors import BadInputError, FileFormatError, NotComparableError
from specbench.gate.compare import compare, run_gate
from specbench.gate.inputs import GateSide, load_run_side, load_side
from specbench.gate.results import (
    METRIC_COMPLETED,
    METRIC_SPEEDUP,
    METRIC_TAU,
    METRIC_TOKENS_PER_S,
    GateOptions,
    GateRow,
    Status,
    parse_threshold,
)
from specbench.gate.stats import METHOD_MWU, METHOD_PAIRED, METHOD_T_CI
from tests.support.gate_runs import BASE, BASELINE_FILE, DROP10, FEW_A, FEW_B, NOISE, copy_run


def row(rows: list[GateRow], metric: str, key: str, conc: int) -> GateRow:
    (found,) = [r for r in rows if (r.metric, r.config_key, r.concurrency) == (metric, key, conc)]
    return found


def test_identical_runs_pass_with_every_metric_checked() -> None:
    result = run_gate(BASE, BASE)
    assert result.exit_code == 0 and result.passed
    assert {r.status for r in result.rows} == {Status.PASS}
    # tau + tok/s + speedup for 3-4-8, tok/s for the no-speculation baseline, at c=1 and 8.
    assert len(result.rows) == 8
    assert all(r.change == 0.0 and r.method == METHOD_PAIRED for r in result.rows)
    assert result.simulated and not result.not_compared
    tau = row(result.rows, METRIC_TAU, "3-4-8", 1)
    assert tau.statistic == "median" and tau.n_baseline == tau.n_candidate == 24
    assert 2.3 < tau.baseline_value < 3.05  # calibrated tau range at 3-4-8


def test_ten_percent_tau_drop_fails() -> None:
    result = run_gate(BASE, DROP10)
    assert result.exit_code == 1
    failed = {(r.metric, r.config_key, r.concurrency) for r in result.regressions}
    assert (METRIC_TAU, "3-4-8", 8) in failed
    assert all(r.config_key == "3-4-8" for r in result.regressions)
    tau = row(result.rows, METRIC_TAU, "3-4-8", 8)
    assert tau.change < -0.03 and tau.p_value is not None and tau.p_value < 0.002
    # The no-speculation baseline did not change.
    assert row(result.rows, METRIC_TOKENS_PER_S, "baseline", 8).status is Status.PASS
    # 2-1-3 ran only in the candidate.
    assert result.not_compared == ["2-1-3 c=1: only in the candidate"]


def test_two_percent_drop_with_noise_passes() -> None:
    result = run_gate(BASE, NOISE)
    assert result.exit_code == 0
    assert not result.regressions
    assert all(r.change > -0.06 for r in result.rows)


def test_large_change_on_three_samples_is_shown_but_does_not_fail() -> None:
    result = run_gate(FEW_A, FEW_B)
    assert result.exit_code == 0
    tau = row(result.rows, METRIC_TAU, "3-4-8", 1)
    assert tau.change < -0.1
    assert tau.status is Status.INSIGNIFICANT
    assert tau.method == METHOD_T_CI and tau.n_baseline == 3
    assert tau.ci_baseline is not None and tau.ci_candidate is not None


def test_improvement_is_reported_and_never_fails() -> None:
    result = run_gate(DROP10, BASE)
    assert result.exit_code == 0
    assert row(result.rows, METRIC_TAU, "3-4-8", 8).status is Status.IMPROVED
    assert result.not_compared == ["2-1-3 c=1: only in the baseline"]


def test_tighter_alpha_and_wider_threshold_change_the_verdict() -> None:
    loose = run_gate(BASE, DROP10, GateOptions(max_tau_drop=0.2, max_speedup_drop=0.2))
    assert loose.exit_code == 0
    strict = run_gate(BASE, DROP10, GateOptions(alpha=1e-9))
    assert strict.exit_code == 0
    assert strict.count(Status.INSIGNIFICANT) >= 3


def test_fingerprint_mismatch_names_fields_unless_forced() -> None:
    with pytest.raises(NotComparableError) as err:
        run_gate(BASE, FEW_B)
    message = str(err.value)
    assert "prompts_sha256" in message and "num_prompts: 24 != 3" in message
    forced = run_gate(BASE, FEW_B, GateOptions(force=True))
    assert forced.forced and any("num_prompts" in d for d in forced.workload_differences)
    assert forced.rows


def test_config_and_concurrency_selection() -> None:
    result = run_gate(BASE, DROP10, GateOptions(configs=("3-4-8",), concurrencies=(1,)))
    assert {r.concurrency for r in result.rows} == {1}
    # the no-speculation baseline stays in: speedup needs it and it is context.
    assert {r.config_key for r in result.rows} == {"baseline", "3-4-8"}
    assert result.not_compared == []
    with pytest.raises(BadInputError, match=r"--config 5-4-8: not in the candidate"):
        run_gate(BASE, DROP10, GateOptions(configs=("5-4-8",)))
    with pytest.raises(BadInputError, match=r"--concurrency 4: not in the candidate"):
        run_gate(BASE, DROP10, GateOptions(concurrencies=(4,)))
    with pytest.raises(BadInputError, match="nothing to compare"):
        run_gate(BASE, DROP10, GateOptions(configs=("2-1-3",)))


def test_speedup_is_informational_without_baseline_samples() -> None:
    base, cand = load_run_side(BASE), load_run_side(DROP10)
    stripped = {
        cell: (dataclasses.replace(s, output_tokens_per_s=()) if cell[0] == "baseline" else s)
        for cell, s in base.cells.items()
    }
    base.cells = stripped
    result = compare(base, cand)
    speedup = row(result.rows, METRIC_SPEEDUP, "3-4-8", 8)
    assert speedup.status is Status.INFO and "informational" in speedup.note
    assert math.isclose(speedup.change, speedup.candidate_value / speedup.baseline_value - 1)
    assert any("no per-request samples in the baseline" in n for n in result.not_compared)


def test_speedup_row_missing_when_a_side_has_no_baseline() -> None:
    base, cand = load_run_side(BASE), load_run_side(DROP10)
    base.cells = {c: s for c, s in base.cells.items() if c != ("baseline", 8)}
    base.cells[("3-4-8", 8)] = dataclasses.replace(base.cells[("3-4-8", 8)], speedup=None)
    result = compare(base, cand)
    assert not [r for r in result.rows if r.metric == METRIC_SPEEDUP and r.concurrency == 8]
    assert any("speedup 3-4-8 c=8: the baseline has no" in n for n in result.not_compared)


def test_baseline_file_gives_the_same_verdict_as_the_run() -> None:
    from_run = run_gate(BASE, DROP10)
    from_file = run_gate(BASELINE_FILE, DROP10)
    assert [r.status for r in from_file.rows] == [r.status for r in from_run.rows]
    for a, b in zip(from_file.rows, from_run.rows, strict=True):
        assert a.change == pytest.approx(b.change, abs=1e-5)
    assert load_side(BASELINE_FILE).origin == "baseline-file"
    # A run's manifest file stands for its directory.
    assert load_side(BASE / "manifest.json").origin == "run"


def test_parse_threshold() -> None:
    assert parse_threshold("3%") == pytest.approx(0.03)
    assert parse_threshold("0.05") == pytest.approx(0.05)
    assert parse_threshold("0") == 0.0
    for bad in ("3", "abc", "150%", "-1%"):
        with pytest.raises(BadInputError):
            parse_threshold(bad)


def test_rows_are_pandas_friendly() -> None:
    import pandas as pd

    frame = pd.DataFrame(run_gate(BASE, NOISE).to_rows())
    assert {"metric", "config_key", "concurrency", "change", "p_value", "status"} <= set(frame)
    assert len(frame) == 8
    with pytest.raises(BadInputError, match="--alpha"):
        run_gate(BASE, NOISE, GateOptions(alpha=0.0))


def _side_with_tau(name: str, tau: list[float], ids: list[str]) -> GateSide:
    base = load_run_side(BASE)
    cells = {
        cell: dataclasses.replace(
            samples,
            tau=tuple(tau),
            tau_prompt_ids=tuple(ids),
        )
        if cell == ("3-4-8", 1)
        else samples
        for cell, samples in base.cells.items()
    }
    return dataclasses.replace(base, source=name, cells=cells)


def test_ten_percent_drop_on_default_sixteen_prompts_is_caught_by_pairing() -> None:
    # 16 prompts whose own tau spreads 1.6-3.8 (domains, prompt difficulty) and a small
    # run-to-run wobble per prompt: unpaired, the spread between prompts hides a real 10%
    # drop (Mann-Whitney p ~ 0.2); paired by prompt it is unmistakable.
    rng = np.random.default_rng(7)
    ids = [f"p{i:02d}" for i in range(16)]
    own = np.linspace(1.6, 3.8, 16)
    before = own * rng.lognormal(0.0, 0.03, 16)
    after = own * 0.9 * rng.lognormal(0.0, 0.03, 16)
    result = compare(
        _side_with_tau("before", list(before), ids), _side_with_tau("after", list(after), ids)
    )
    tau = row(result.rows, METRIC_TAU, "3-4-8", 1)
    assert tau.method == METHOD_PAIRED and tau.status is Status.REGRESSION
    assert result.exit_code == 1
    # Without prompt ids (an older baseline file) the gate falls back to the unpaired test.
    unpaired = compare(
        _side_with_tau("before", list(before), []), _side_with_tau("after", list(after), ids)
    )
    assert row(unpaired.rows, METRIC_TAU, "3-4-8", 1).method == METHOD_MWU


def test_baseline_file_keeps_prompt_ids_so_it_is_tested_paired(tmp_path: Path) -> None:
    from_file = run_gate(BASELINE_FILE, DROP10)
    assert row(from_file.rows, METRIC_TAU, "3-4-8", 8).method == METHOD_PAIRED
    data = json.loads(BASELINE_FILE.read_text())
    # A file from before the ids were kept still works, unpaired.
    for cell in data["cells"]:
        del cell["tau_prompt_ids"], cell["output_tokens_per_s_prompt_ids"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    assert row(run_gate(old, DROP10).rows, METRIC_TAU, "3-4-8", 8).method == METHOD_MWU
    # Ids that do not line up with the samples are named with their file and field.
    data["cells"][1]["tau_prompt_ids"] = ["only-one"]
    old.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="tau_prompt_ids"):
        load_side(old)


def _break_results(run: Path, edit: dict[str, object]) -> None:
    path = run / "results.json"
    data = json.loads(path.read_text())
    for trial in data["trials"]:
        if trial["config_key"] == "3-4-8" and trial["concurrency"] == 8:
            trial.update(edit)
    path.write_text(json.dumps(data))


def test_configuration_that_crashes_in_the_candidate_fails_the_gate(tmp_path: Path) -> None:
    crashed = copy_run(BASE, tmp_path / "crashed")
    _break_results(
        crashed,
        {"state": "failed", "error": "server exited with code 1 | CUDA OOM", "speedup": None},
    )
    result = run_gate(BASE, crashed)
    assert result.exit_code == 1
    (failed,) = result.regressions
    assert (failed.metric, failed.config_key, failed.concurrency) == (
        METRIC_COMPLETED,
        "3-4-8",
        8,
    )
    assert "CUDA OOM" in failed.note
    assert not any("3-4-8 c=8" in n for n in result.not_compared)


def test_interrupted_configuration_is_not_compared_rather_than_failed(tmp_path: Path) -> None:
    interrupted = copy_run(BASE, tmp_path / "interrupted")
    _break_results(
        interrupted,
        # rebuild_results gives an interrupted trial the primary concurrency and no duration
        {"state": "failed", "error": "interrupted (Ctrl-C or SIGTERM)", "duration_s": None},
    )
    result = run_gate(BASE, interrupted)
    assert result.exit_code == 0
    assert "3-4-8 c=8: only in the baseline" in result.not_compared
