"""Engine overheads refitted to measured step times; the engine file predict reads."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.model.calibrate_cost import (
    StepMeasurement,
    fit_engine_overheads,
    write_engine_profile,
)
from specbench.model.engines import load_engine
from specbench.spec_config import SpecConfig

CONFIGS = (None, SpecConfig(3, 1, 4), SpecConfig(5, 4, 8))


def _models() -> tuple[PerformanceModel, PerformanceModel]:
    t, h = load_target("llama-3.1-8b"), load_hardware("h100-nvlink", 1)
    prior = load_engine("sglang")
    true = replace(
        prior,
        scheduler_us=700.0,
        request_us=25.0,
        spec_iteration_us=300.0,
        spec_token_us=40.0,
        draft_step_us=200.0,
        draft_token_us=3.0,
    )
    return (
        PerformanceModel(t, h, samples=50, engine=prior),
        PerformanceModel(t, h, samples=50, engine=true),
    )


def _measure(truth: PerformanceModel, concurrencies: tuple[int, ...]) -> list[StepMeasurement]:
    return [
        StepMeasurement(c, b, truth.decode_step_s(c, b) * 1e3)
        for c in CONFIGS
        for b in concurrencies
    ]


def test_fit_recovers_the_true_overheads() -> None:
    prior, truth = _models()
    fit = fit_engine_overheads(prior, _measure(truth, (1, 4, 16, 64)), name="mine")
    assert fit.max_abs_relative_error < 1e-6
    assert set(fit.fitted) >= {"scheduler_us", "request_us", "spec_token_us", "draft_step_us"}
    for field in fit.fitted:
        assert getattr(fit.engine, field) == pytest.approx(getattr(truth.engine, field), rel=0.01)
    assert fit.engine.name == "mine" and fit.base == "sglang"


def test_one_concurrency_fits_no_per_request_cost() -> None:
    prior, truth = _models()
    fit = fit_engine_overheads(prior, _measure(truth, (1,)))
    assert "request_us" not in fit.fitted and "scheduler_us" in fit.fitted
    assert fit.engine.request_us == prior.engine.request_us
    base_only = fit_engine_overheads(
        prior, [StepMeasurement(None, 1, 7.0), StepMeasurement(None, 8, 9.0)]
    )
    assert base_only.fitted == ("scheduler_us", "request_us")
    with pytest.raises(BadInputError):
        fit_engine_overheads(prior, [])
    with pytest.raises(BadInputError):
        fit_engine_overheads(prior, [StepMeasurement(None, 1, -1.0)])


def test_engine_file_round_trips_into_predict(tmp_path: Path) -> None:
    prior, truth = _models()
    fit = fit_engine_overheads(prior, _measure(truth, (1, 8, 32)), name="my-sglang")
    path = tmp_path / "engine.toml"
    write_engine_profile(path, fit)
    loaded = load_engine(str(path))
    assert loaded == fit.engine
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "specbench",
            "predict",
            "--target",
            "llama-3.1-8b",
            "--hardware",
            "h100-nvlink",
            "--engine",
            str(path),
            "--config",
            "3,1,4",
            "--concurrency",
            "8",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["engine"]["name"] == "my-sglang"
    assert data["rows"][0]["step_time_ms"] == pytest.approx(
        truth.decode_step_s(SpecConfig(3, 1, 4), 8) * 1e3, rel=1e-6
    )
