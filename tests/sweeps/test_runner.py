"""run_sweep in-process on the simulator: files written, strategies, resume, failures."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from specbench.errors import BadInputError, RunFailedError
from specbench.rundir.layout import TRIAL_COLUMNS, RunDirectory
from specbench.rundir.records import read_records
from specbench.spec_config import SpecConfig, valid_configs
from specbench.sweeps.options import select_prompts
from specbench.sweeps.results import rows_from_study
from specbench.sweeps.runner import run_sweep
from specbench.sweeps.storage import open_storage
from tests.support.sweeps import ScriptedBackend, fast_options, truth_model


def _load_study(run: RunDirectory) -> optuna.Study:
    storage = open_storage(None, run.journal_path)
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _measured_keys(frame: object) -> list[str]:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    rows = frame[(frame["config_key"] != "baseline") & (frame["concurrency"] == 1)]
    return list(rows["config_key"])


def test_optuna_sweep_writes_the_whole_run_directory(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outcome = run_sweep(fast_options(out, trials=6, seed=1))
    run = RunDirectory(out)
    manifest = run.read_manifest()
    assert manifest.target == "minimax-m2.7"
    assert manifest.backend == "sim" and manifest.simulated is True
    assert manifest.hardware["name"] == "h200-nvlink"
    assert manifest.concurrencies == [1, 4]
    assert manifest.workload.num_prompts == 4 and manifest.workload.max_new_tokens == 24

    results = run.read_results()
    assert results["simulated"] is True
    assert results["primary_concurrency"] == 1
    assert [b["concurrency"] for b in results["baseline"]] == [1, 4]
    best = results["best"]
    assert best is not None
    assert {"num_steps", "topk", "num_draft_tokens", "tau", "speedup"} <= set(best)
    assert "break_even" in results and "verdict_reason" in results

    frame = run.read_trials()
    assert list(frame.columns) == list(TRIAL_COLUMNS)
    keys = _measured_keys(frame)
    assert len(keys) == 6 and len(set(keys)) == 6
    assert len(frame) == 2 + 6 * 2  # baseline + 6 configurations, two concurrencies each
    assert (frame["state"] == "complete").all()
    spec = frame[frame["config_key"] != "baseline"]
    assert spec["tau"].between(1.0, 9.0).all()
    assert spec["speedup"].notna().all()
    assert spec["predicted_speedup"].notna().all()
    assert set(spec["source"]) >= {"model-prior", "card", "sglang-auto"}
    # trials.csv and results.json agree.
    csv = __import__("pandas").read_csv(run.trials_path)
    assert len(csv) == len(frame)

    records = read_records(run.requests_path)
    assert {r.trial_number for r in records} == {-1, *spec["trial_number"].astype(int)}
    assert {r.concurrency for r in records} == {1, 4}
    assert all(r.simulated for r in records)
    assert {r.config_key for r in records if r.trial_number == -1} == {"baseline"}
    assert (run.logs_dir / "baseline.log").exists()
    assert outcome.measured_total == 6 and outcome.simulated


def test_grid_strategy_covers_exactly_the_valid_space(tmp_path: Path) -> None:
    spec = "num_steps=1..3,topk=1|2,num_draft_tokens=2..6"
    outcome = run_sweep(
        fast_options(tmp_path / "grid", strategy="grid", space=spec, concurrencies=(1,))
    )
    expected = valid_configs((1, 2, 3), (1, 2), range(2, 7))
    keys = _measured_keys(outcome.trials)
    assert keys == [c.key for c in expected]  # enumeration order, each exactly once
    assert outcome.results["study"]["strategy"] == "grid"


def test_fixed_strategy_measures_only_its_configs(tmp_path: Path) -> None:
    configs = (SpecConfig(3, 4, 8), SpecConfig(2, 1, 3))
    outcome = run_sweep(fast_options(tmp_path / "fixed", strategy="fixed", configs=configs))
    assert _measured_keys(outcome.trials) == ["3-4-8", "2-1-3"]
    assert set(outcome.trials["source"]) == {"baseline", "fixed"}


def test_failed_server_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    backend = ScriptedBackend(truth_model(), fail=["2-1-3"])
    configs = (SpecConfig(3, 4, 8), SpecConfig(2, 1, 3), SpecConfig(5, 4, 8))
    outcome = run_sweep(
        fast_options(tmp_path / "f", strategy="fixed", configs=configs, backend_instance=backend)
    )
    frame = outcome.trials
    failed = frame[frame["config_key"] == "2-1-3"]
    assert len(failed) == 2 and (failed["state"] == "failed").all()
    assert failed["error"].str.contains("exited with code 1").all()
    assert failed["log_tail"].str.contains("scripted failure").all()
    assert failed["speedup"].isna().all()
    done = frame[frame["config_key"].isin(["3-4-8", "5-4-8"])]
    assert (done["state"] == "complete").all() and len(done) == 4
    assert outcome.results["best"]["config_key"] in {"3-4-8", "5-4-8"}
    # Resuming does not retry the failed configuration (it was measured: it failed).
    again = ScriptedBackend(truth_model(), fail=["2-1-3"])
    run_sweep(
        fast_options(tmp_path / "f", strategy="fixed", configs=configs, backend_instance=again)
    )
    assert again.opened == []


def test_failed_baseline_stops_the_sweep(tmp_path: Path) -> None:
    backend = ScriptedBackend(truth_model(), fail=["baseline"])
    with pytest.raises(RunFailedError, match="baseline"):
        run_sweep(fast_options(tmp_path / "b", trials=3, backend_instance=backend))
    assert backend.opened == ["baseline"]


def test_interrupt_keeps_finished_trials_and_resume_never_repeats_them(tmp_path: Path) -> None:
    out = tmp_path / "resume"
    first = ScriptedBackend(truth_model(), interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(fast_options(out, trials=6, backend_instance=first))
    run = RunDirectory(out)
    results = run.read_results()  # written in the finally
    states = {
        r["config_key"]: r["state"] for r in results["trials"] if r["config_key"] != "baseline"
    }
    finished = [k for k, s in states.items() if s == "complete"]
    assert len(finished) == 3
    interrupted_key = first.opened[-1]
    assert states[interrupted_key] == "failed"
    study = _load_study(run)
    (bad,) = [t for t in study.trials if t.state == TrialState.FAIL]
    assert bad.user_attrs["interrupted"] is True

    second = ScriptedBackend(truth_model())
    outcome = run_sweep(fast_options(out, trials=6, backend_instance=second))
    assert "baseline" not in second.opened  # the stored baseline is reused
    assert not set(second.opened) & set(finished)
    assert len(second.opened) == 3
    keys = _measured_keys(outcome.trials[outcome.trials["state"] == "complete"])
    assert len(keys) == 6 and len(set(keys)) == 6


def test_trial_left_running_by_a_killed_worker_is_failed_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    run_sweep(fast_options(out, trials=2))
    study = _load_study(RunDirectory(out))
    # What a SIGKILLed worker leaves behind: a RUNNING trial owned by a dead pid.
    trial = study.ask()
    trial.set_user_attr("worker", f"{socket.gethostname()}:999999999")
    trial.set_user_attr("config_key", "7-2-9")
    trial.set_user_attr("source", "tpe")
    number = trial.number
    frame_rows = rows_from_study(study)
    assert any(r.get("state") == "running" for r in frame_rows)

    backend = ScriptedBackend(truth_model())
    run_sweep(fast_options(out, trials=3, backend_instance=backend))
    study = _load_study(RunDirectory(out))
    dead = study.trials[number]
    assert dead.state == TrialState.FAIL
    assert "interrupted" in dead.user_attrs["error"]
    assert len(backend.opened) == 1  # two finished before, one more now
    results = json.loads((out / "results.json").read_text())
    assert any(r["config_key"] == "7-2-9" and r["state"] == "failed" for r in results["trials"])


def test_incompatible_run_directory_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "old"
    run_sweep(fast_options(out, trials=1))
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(BadInputError, match="different sweep"):
        run_sweep(fast_options(out, trials=1, max_new_tokens=16))
    with pytest.raises(BadInputError, match="different sweep"):
        run_sweep(fast_options(out, trials=1, hardware="h100-pcie-host-staged"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = "9.0"
    (out / "manifest.json").write_text(json.dumps(manifest))
    before["manifest.json"] = (out / "manifest.json").stat().st_mtime_ns
    with pytest.raises(BadInputError, match="schema"):
        run_sweep(fast_options(out, trials=1))
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_non_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BadInputError, match="not a specbench run directory"):
        run_sweep(fast_options(tmp_path, trials=1))


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"trials": 0}, "--trials must be >= 1"),
        ({"configs": (SpecConfig(3, 4, 8),)}, "only used with --strategy fixed"),
        ({"strategy": "fixed"}, "needs at least one --config"),
        ({"endpoint": "http://127.0.0.1:9", "strategy": "grid"}, "--endpoint"),
        ({"baseline_endpoint": "http://127.0.0.1:9"}, "only used with --endpoint"),
        ({"concurrencies": (1, 1)}, "repeats"),
        ({"backend": "sim", "launch_cmd": "x"}, "--launch-cmd"),
    ],
)
def test_invalid_option_combinations(
    tmp_path: Path, overrides: dict[str, object], needle: str
) -> None:
    with pytest.raises(BadInputError, match=needle.replace("-", r"\-")):
        run_sweep(fast_options(tmp_path / "x", **overrides))
    assert not (tmp_path / "x").exists()


def test_prompt_selection_mixes_domains() -> None:
    from specbench.harness.prompts import builtin_prompts

    chosen = select_prompts(builtin_prompts(), 6)
    assert len(chosen) == 6
    assert {p.domain for p in chosen} == {"chat", "code", "math"}
    with pytest.raises(BadInputError):
        select_prompts(builtin_prompts(), 10_000)


def test_interrupted_fixed_config_is_measured_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "gate"
    configs = (SpecConfig(3, 4, 8), SpecConfig(5, 4, 8))
    first = ScriptedBackend(truth_model(), interrupt=["5-4-8"])
    with pytest.raises(KeyboardInterrupt):
        run_sweep(fast_options(out, strategy="fixed", configs=configs, backend_instance=first))
    second = ScriptedBackend(truth_model())
    outcome = run_sweep(
        fast_options(out, strategy="fixed", configs=configs, backend_instance=second)
    )
    assert second.opened == ["5-4-8"]
    done = outcome.trials[outcome.trials["state"] == "complete"]
    assert set(done["config_key"]) == {"baseline", "3-4-8", "5-4-8"}
    # The interrupted attempt no longer shows once its configuration is measured.
    assert (outcome.trials["state"] == "complete").all()
    assert list(done["config_key"]).count("5-4-8") == 2  # two concurrencies, one trial


def test_budget_minutes_stops_starting_trials(tmp_path: Path) -> None:
    # A budget far below one trial's duration: the first configuration runs, no more.
    outcome = run_sweep(fast_options(tmp_path / "budget", trials=10, budget_minutes=1e-6))
    assert outcome.measured_now == 1
    assert len(_measured_keys(outcome.trials)) == 1


def test_gp_sampler_in_a_narrowed_space(tmp_path: Path) -> None:
    spec = "num_steps=2..4,topk=2|4,num_draft_tokens=3..12"
    outcome = run_sweep(
        fast_options(tmp_path / "gp", trials=9, sampler="gp", space=spec, concurrencies=(1,))
    )
    space_keys = {c.key for c in valid_configs((2, 3, 4), (2, 4), range(3, 13))}
    keys = _measured_keys(outcome.trials)
    assert len(keys) == 9 and len(set(keys)) == 9
    assert set(keys) <= space_keys
    assert outcome.results["study"]["sampler"] == "gp"
    assert outcome.results["study"]["space"] == spec
