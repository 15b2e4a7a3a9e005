"""The run directory: manifest, results, trials round trips and field errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specbench.errors import FileFormatError
from specbench.rundir.layout import (
    TRIAL_COLUMNS,
    Manifest,
    RunDirectory,
    WorkloadFingerprint,
    normalise_trials,
    trials_to_records,
)


def _fingerprint(**changes: object) -> WorkloadFingerprint:
    fields: dict[str, object] = {
        "target_model": "MiniMaxAI/MiniMax-M2.7",
        "draft_model": "Lorbus/MiniMax-M2.7-EAGLE3",
        "algorithm": "EAGLE3",
        "prompts_sha256": "abc",
        "num_prompts": 60,
        "max_new_tokens": 256,
    }
    fields.update(changes)
    return WorkloadFingerprint(**fields)  # type: ignore[arg-type]


def test_run_directory_round_trip(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run")
    manifest = Manifest(
        target="minimax-m2.7",
        hardware={"name": "h200-nvlink", "interconnect_class": "nvlink", "tp": 4},
        backend="sim",
        simulated=True,
        workload=_fingerprint(),
        concurrencies=[1, 8],
        strategy="optuna",
        specbench_version="0.1.0",
    )
    run.write_manifest(manifest)
    again = run.read_manifest()
    assert again.workload == manifest.workload
    assert again.primary_concurrency == 1
    rows = [
        {
            "trial_number": 0,
            "config_key": "3-4-8",
            "num_steps": 3,
            "topk": 4,
            "num_draft_tokens": 8,
            "concurrency": 1,
            "state": "complete",
            "tau": 2.6,
            "speedup": 2.0,
            "simulated": True,
        },
        {"trial_number": -1, "config_key": "baseline", "concurrency": 1, "state": "complete"},
    ]
    frame = run.write_trials(rows)
    assert list(frame.columns) == list(TRIAL_COLUMNS)
    run.write_results(
        {
            "target": "minimax-m2.7",
            "backend": "sim",
            "simulated": True,
            "concurrencies": [1],
            "best": None,
            "trials": trials_to_records(frame),
        }
    )
    trials = run.read_trials()
    assert trials.loc[0, "num_steps"] == 3
    assert trials["num_steps"].isna().iloc[1]
    assert trials.loc[0, "simulated"]


def test_results_field_errors_name_the_field(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path)
    run.write_results(
        {
            "target": "t",
            "backend": "sim",
            "simulated": True,
            "concurrencies": [1],
            "trials": [{"config_key": "3-4-8", "state": "complete"}],
        }
    )
    with pytest.raises(FileFormatError, match=r"trials\[0\].*'concurrency'"):
        run.read_results()
    data = json.loads(run.results_path.read_text())
    data["simulated"] = "yes"
    run.results_path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="'simulated'"):
        run.read_results()


def test_fingerprint_differences() -> None:
    assert _fingerprint().differences(_fingerprint()) == []
    diff = _fingerprint().differences(_fingerprint(max_new_tokens=128))
    assert diff == ["max_new_tokens: 256 != 128"]
    assert _fingerprint().digest != _fingerprint(prompts_sha256="def").digest


def test_normalise_trials_keeps_integer_columns() -> None:
    frame = normalise_trials([{"num_steps": 3, "concurrency": 8}, {"concurrency": 1}])
    assert str(frame["num_steps"].dtype) == "Int64"
    assert str(frame["concurrency"].dtype) == "Int64"
