"""The gate on request-rate loads: SLO-rates compared by bracket, goodput shown."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from specbench.gate.compare import run_gate
from specbench.gate.rates import METRIC_GOODPUT, METRIC_SLO_RATE, slo_rate_status
from specbench.gate.results import GateOptions, Status
from specbench.spec_config import SpecConfig
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options


@pytest.fixture(scope="module")
def rate_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rates") / "run"
    run_sweep(
        fast_options(
            out, strategy="fixed", configs=(SpecConfig(2, 1, 3),), concurrencies=(1,),
            load="sweep:3", slo="tpot_p99_ms=40",
        )
    )  # fmt: skip
    return out


def test_the_same_run_passes_with_slo_rate_and_goodput_rows(rate_run: Path) -> None:
    result = run_gate(rate_run, rate_run)
    slo = [r for r in result.rows if r.metric == METRIC_SLO_RATE]
    assert {r.config_key for r in slo} == {"baseline", "2-1-3"}
    assert all(r.status == Status.PASS for r in slo)
    assert len([r for r in result.rows if r.metric == METRIC_GOODPUT]) == 6
    assert result.exit_code == 0


def test_an_slo_rate_below_the_bracket_fails_the_gate(rate_run: Path, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(rate_run, candidate)
    path = candidate / "results.json"
    results = json.loads(path.read_text())
    for entry in results["rates"]["slo_rates"]:
        if entry["config_key"] == "2-1-3":
            entry["rate_per_s"] *= 0.5
            entry["high_per_s"] = entry["rate_per_s"] * 1.02
    path.write_text(json.dumps(results))
    result = run_gate(rate_run, candidate, GateOptions(max_slo_rate_drop=0.10))
    (row,) = [r for r in result.rows if r.metric == METRIC_SLO_RATE and r.config_key == "2-1-3"]
    assert row.status == Status.REGRESSION and row.change == pytest.approx(-0.5)
    assert result.exit_code == 1


@pytest.mark.parametrize(
    ("cand", "status"),
    [
        ({"rate_per_s": 9.0, "high_per_s": 9.2}, Status.REGRESSION),
        ({"rate_per_s": 9.0, "high_per_s": 10.5}, Status.INSIGNIFICANT),
        ({"rate_per_s": 9.9, "high_per_s": 10.1}, Status.PASS),
        ({"rate_per_s": 12.0, "high_per_s": None}, Status.IMPROVED),
    ],
)
def test_slo_rate_status_reads_the_brackets(cand: dict[str, float], status: Status) -> None:
    base = {"rate_per_s": 10.0, "high_per_s": 10.2}
    assert slo_rate_status(base, cand, 0.05)[0] == status
