"""`specbench predict` end to end, as a subprocess (what users run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from specbench.spec_config import valid_configs


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specbench", "predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_json_covers_every_valid_config() -> None:
    res = _run(
        "--target", "minimax-m2.7", "--hardware", "h200-nvlink", "--concurrency", "1,8,32", "--json"
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["schema_version"] and data["kind"] == "specbench.predict"
    assert data["simulated"] is True
    assert data["target"]["name"] == "minimax-m2.7"
    assert data["hardware"]["name"] == "h200-nvlink" and data["hardware"]["tp"] == 4
    assert len(data["rows"]) == len(valid_configs()) * 3
    row = data["rows"][0]
    for key in ("num_steps", "topk", "num_draft_tokens", "concurrency", "tau", "speedup"):
        assert key in row
    best = {b["concurrency"]: b for b in data["best"]}
    assert set(best) == {1, 8, 32}
    for conc, b in best.items():
        top = max(r["speedup"] for r in data["rows"] if r["concurrency"] == conc)
        assert b["speedup"] == pytest.approx(top)
    assert "3-4-8" in data["break_even"]
    # On NVLink the card config pays at low load and falls through 1 somewhere in the scan.
    assert data["break_even_status"]["3-4-8"] == "crosses"
    assert data["break_even"]["3-4-8"] > 32


def test_host_staged_card_config_never_pays() -> None:
    res = _run(
        "--target",
        "minimax-m2.7",
        "--hardware",
        "l40s-pcie-host-staged",
        "--config",
        "3,4,8",
        "--concurrency",
        "1",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    speedup = data["rows"][0]["speedup"]
    status = data["break_even_status"]["3-4-8"]
    assert status == ("never-pays" if speedup < 1.0 else "crosses")
    assert data["break_even"]["3-4-8"] is None or status == "crosses"


def test_single_config_and_tp_override() -> None:
    res = _run(
        "--target", "minimax-m2.7", "--config", "3,4,8", "--tp", "8", "--concurrency", "1", "--json"
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [(r["num_steps"], r["topk"], r["num_draft_tokens"]) for r in data["rows"]] == [(3, 4, 8)]
    assert data["hardware"]["tp"] == 8
    assert 1.7 <= data["rows"][0]["speedup"] <= 2.3


def test_table_output_is_labelled_simulated() -> None:
    res = _run(
        "--target",
        "llama-3.1-8b",
        "--hardware",
        "h100-nvlink",
        "--top",
        "2",
        "--concurrency",
        "1,64",
    )
    assert res.returncode == 0, res.stderr
    assert "SIMULATED" in res.stdout
    assert "break-even" in res.stdout


def test_list() -> None:
    res = _run("--list")
    assert res.returncode == 0
    assert "minimax-m2.7" in res.stdout and "h200-nvlink" in res.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "nope"], "unknown target 'nope'"),
        (["--target", "minimax-m2.7", "--config", "3,1,8"], "num_steps + 1"),
        (["--target", "minimax-m2.7", "--config", "2,2,8"], "out of range"),
        (["--target", "minimax-m2.7", "--config", "banana"], "cannot read configuration"),
        (["--target", "minimax-m2.7", "--concurrency", "1,x"], "--concurrency"),
        (["--target", "minimax-m2.7", "--concurrency", "0"], "--concurrency"),
        (["--target", "minimax-m2.7", "--hardware", "nope"], "unknown hardware 'nope'"),
        (["--target", "minimax-m2.7", "--tp", "16"], "needs 16"),
        (["--target", "minimax-m2.7", "--tp", "0"], "--tp must be >= 1"),
        (["--target", "minimax-m2.7", "--config", "10,1,11"], "covers num_steps 1..8"),
        (["--target", "minimax-m2.7", "--config", "3,32,8"], "topk 1..16"),
        (["--target", "minimax-m2.7", "--tp", "-2"], "--tp must be >= 1"),
        (["--target", "minimax-m2.7", "--top", "0"], "--top"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], needle: str) -> None:
    res = _run(*args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("specbench: error:")
    assert needle in lines[0]


def test_a_probe_without_gpus_names_the_profiles_to_pass_instead(tmp_path: Path) -> None:
    probe = tmp_path / "probe.json"
    probe.write_text(
        json.dumps({"schema_version": "1.0", "interconnect": {"class": "cpu-only"}, "gpus": []})
    )
    res = _run("--target", "minimax-m2.7", "--hardware", str(probe))
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "no GPUs in this probe" in line
    assert "--hardware h200-nvlink" in line and "specbench predict --list" in line


def test_malformed_probe_file_is_named(tmp_path: Path) -> None:
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps({"schema_version": "1.0", "interconnect": {"class": "nvlink"}}))
    res = _run("--target", "minimax-m2.7", "--hardware", str(probe))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specbench: error:")
    assert "probe.json" in lines[0] and "gpus" in lines[0]
