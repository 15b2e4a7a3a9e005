"""The public Python API: sweep, open_run and predict, the README's example included."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import specbench
from specbench.errors import BadInputError
from specbench.spec_config import SpecConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The python block of the README's "Use it from Python" section."""
    text = README.read_text()
    section = text.split("### Use it from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the README's Python section has no example"
    return match.group(1)


def test_the_readme_example_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stdout
    assert (tmp_path / "runs" / "from-python" / "results.json").is_file()


def test_sweep_returns_the_run_directory_it_wrote(tmp_path: Path) -> None:
    results = specbench.sweep(
        backend="sim", hardware="h200-nvlink", out=tmp_path / "run",
        configs=[SpecConfig(3, 1, 4), "2,4,6"], concurrencies=[1, 4],
        num_prompts=4, max_new_tokens=24,
    )  # fmt: skip
    assert isinstance(results, specbench.Results)
    assert results.run_dir == tmp_path / "run" and results.simulated
    assert results.backend == "sim" and results.report_path is None
    assert isinstance(results.trials, pd.DataFrame)
    assert set(results.trials["config_key"]) == {"baseline", "3-1-4", "2-4-6"}
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results.verdict == on_disk["verdict"] and results.verdict["kind"]
    assert results.best is not None and results.best["config_key"] in {"3-1-4", "2-4-6"}
    assert [r["concurrency"] for r in results.recommendations] == [1, 4]
    again = specbench.open_run(str(tmp_path / "run"))
    assert again.manifest == results.manifest
    pd.testing.assert_frame_equal(again.trials, results.trials)


def test_sweep_refuses_bad_input_as_the_cli_does(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--concurrency values must be >= 1"):
        specbench.sweep(backend="sim", out=tmp_path / "r", concurrencies=[0])
    with pytest.raises(BadInputError, match="unknown --backend 'nope'"):
        specbench.sweep(backend="nope", out=tmp_path / "r")


def test_predict_returns_the_models_table() -> None:
    table = specbench.predict("minimax-m2.7", hardware="h200-nvlink", concurrencies=[8, 1])
    assert set(table.rows["concurrency"]) == {1, 8}
    assert list(table.best["concurrency"]) == [1, 8]
    assert (table.rows["simulated"]).all()
    assert table.payload["kind"] == "specbench.predict"
    only = specbench.predict(concurrencies=[1], configs=["3,4,8"])
    assert list(only.rows["config"].dropna().unique()) == ["3-4-8"]
    with pytest.raises(BadInputError, match="concurrencies must be >= 1"):
        specbench.predict(concurrencies=[0])


def test_import_specbench_loads_no_heavy_library() -> None:
    code = (
        "import sys, specbench; specbench.__version__; "
        "print(sorted(m for m in ('specbench.api', 'pandas', 'optuna') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = specbench.nope  # type: ignore[attr-defined]
