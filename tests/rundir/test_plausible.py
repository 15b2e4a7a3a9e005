"""NaN, infinity and impossible numbers in a results file are refused by report and gate
(exit 2, one line naming the file and the field), never drawn or passed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from specbench.errors import FileFormatError
from specbench.rundir.plausible import impossible_value
from specbench.rundir.records import RequestRecord
from tests.support.gate_runs import GOLDEN, copy_run, run_gate_cli


def _complete_index(results: dict[str, Any]) -> int:
    return next(
        i
        for i, row in enumerate(results["trials"])
        if row["state"] == "complete" and row["config_key"] != "baseline"
    )


def _edit_results(run: Path, field: str, value: Any) -> str:
    """Set ``field`` of the first completed speculative row; the field path it reads as."""
    path = run / "results.json"
    results = json.loads(path.read_text())
    index = _complete_index(results)
    results["trials"][index][field] = value
    # json.dumps writes NaN and Infinity as their JavaScript literals, as a foreign tool would.
    path.write_text(json.dumps(results, allow_nan=True))
    return f"trials[{index}].{field}"


def _specbench(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SPECBENCH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "specbench", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "internal error" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("tau", float("nan"), "nan is not a number"),
        ("speedup", float("nan"), "nan is not a number"),
        ("output_tokens_per_s", float("inf"), "inf is not a number"),
        ("tau", 0.5, "tau is at least 1"),
        ("speedup", -1.2, "speedup is at least 0"),
    ],
)
def test_report_and_gate_refuse_an_impossible_value(
    tmp_path: Path, field: str, value: float, problem: str
) -> None:
    run = copy_run(GOLDEN / "base", tmp_path / "run")
    where = _edit_results(run, field, value)
    expected = (f"{run / 'results.json'}: field '{where}'", problem)
    _one_line(_specbench("report", run, "--out", tmp_path / "report.html"), *expected)
    _one_line(run_gate_cli("--baseline", GOLDEN / "base", "--candidate", run), *expected)
    _one_line(run_gate_cli("--baseline", run, "--candidate", GOLDEN / "base"), *expected)


def test_gate_refuses_nan_in_a_saved_baseline_file(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    data = json.loads((GOLDEN / "baseline.json").read_text())
    data["cells"][1]["tau_samples"][2] = float("nan")
    path.write_text(json.dumps(data, allow_nan=True))
    result = run_gate_cli("--baseline", path, "--candidate", GOLDEN / "base")
    _one_line(result, f"{path}: field 'cells[1].tau_samples[2]'", "nan")


def test_nested_fields_are_named_and_ordinary_results_pass() -> None:
    results = json.loads((GOLDEN / "base" / "results.json").read_text())
    assert impossible_value(results) is None
    results["best"] = {"tau": 2.1, "speedup_by_concurrency": {"1": 1.4, "8": -0.1}}
    assert impossible_value(results) == (
        "best.speedup_by_concurrency.8",
        "-0.1 is impossible (speedup_by_concurrency is at least 0)",
    )
    # The server's own tau is a claim stored as received: only finiteness is asked of it.
    assert impossible_value({"trials": [{"tau_server": 0.4}]}) is None
    assert impossible_value({"hardware": {"allreduce_alpha_us": float("inf")}}) is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ttft_ms", float("nan")),
        ("e2e_ms", -3.0),
        ("completion_tokens", -1),
        ("itl_ms", [1.0, float("inf")]),
    ],
)
def test_a_request_record_with_an_impossible_number_names_the_field(
    field: str, value: object
) -> None:
    data: dict[str, Any] = {
        "prompt_id": "p", "domain": "chat", "prompt_tokens": 4, "completion_tokens": 8,
        "spec_verify_ct": 3, "ttft_ms": 10.0, "e2e_ms": 90.0, "itl_ms": [1.0],
    }  # fmt: skip
    assert RequestRecord.from_dict(data).tau == pytest.approx(8 / 3)
    data[field] = value
    with pytest.raises(FileFormatError, match=f"field '{field}'"):
        RequestRecord.from_dict(data, path="requests.jsonl:2")
