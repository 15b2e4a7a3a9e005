"""`specbench calibrate`: a chain fitted on one length predicts the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specbench.rundir.acceptance import ACCEPTANCE_KIND, acceptance_path
from specbench.rundir.layout import RunDirectory
from specbench.schema import write_json
from specbench.spec_config import SpecConfig
from tests.support.run_dirs import write_run
from tests.support.sweeps import run_cli

#: Accepted-through-position rates of a chain that accepts 0.9 * 0.95**(d-1) at depth d.
RATES = [0.9, 0.9 * 0.855, 0.9 * 0.855 * 0.812, 0.9 * 0.855 * 0.812 * 0.772]


def _acceptance(run: RunDirectory, k: int, drafts: int = 1000) -> None:
    config = SpecConfig(k, 1, k + 1)
    per_position = [drafts * r for r in RATES[:k]]
    write_json(
        acceptance_path(run, k, config.key, 1),
        {
            "kind": ACCEPTANCE_KIND,
            "trial_number": k,
            "config_key": config.key,
            **config.as_dict(),
            "concurrency": 1,
            "counters": {"drafts": float(drafts), "accepted_per_position": per_position},
            "tau_source": "per-request",
            "tau": 1 + sum(RATES[:k]),
        },
    )


def test_fit_on_k2_predicts_the_other_chains(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", target="llama-3.1-8b")
    run = RunDirectory(path)
    for k in (1, 2, 3, 4):
        _acceptance(run, k)
    result = run_cli(["calibrate", str(path), "--fit-config", "2-1-3", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["fitted_on"] == ["2-1-3"]
    assert (path / "draft-profile.json").is_file()
    for row in summary["predictions"]:
        assert row["predicted_tau"] == pytest.approx(row["measured_tau"], rel=0.05)


def test_a_run_without_chain_data_is_bad_input(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", target="llama-3.1-8b")
    result = run_cli(["calibrate", str(path)], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("specbench: error:") and "no per-position" in result.stderr
