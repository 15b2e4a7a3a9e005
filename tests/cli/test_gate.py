"""`specbench gate` as CI runs it: exit codes, one-line errors, JUnit, Markdown, baselines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from specbench.gate.inputs import GATE_BASELINE_KIND
from tests.support.gate_runs import (
    BASE,
    BASELINE_FILE,
    DROP10,
    FEW_A,
    FEW_B,
    NOISE,
    copy_run,
    run_gate_cli,
)


def assert_one_line_error(proc: object, *needles: str) -> str:
    """Exit 2, no traceback, exactly one `specbench: error:` line naming what is wrong."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    lines = proc.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, proc.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("specbench: error: ")
    assert "Traceback" not in proc.stderr  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_identical_runs_pass_in_a_few_lines_and_verbose_lists_every_row() -> None:
    proc = run_gate_cli("--baseline", BASE, "--candidate", BASE)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) < 10, proc.stdout
    assert "✓" not in proc.stdout and "REGRESSION" not in proc.stdout
    assert "SIMULATED" in proc.stdout
    assert "8 metrics unchanged within noise (8 within threshold); --verbose lists all" in (
        proc.stdout
    )
    assert proc.stdout.splitlines()[0] == (
        "gate PASS (SIMULATED): no metric dropped past its threshold with a significant "
        "test (8 checks, 8 pass)"
    )
    verbose = run_gate_cli("--baseline", BASE, "--candidate", BASE, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.count("✓") == 8
    assert "unchanged within noise" not in verbose.stdout


def test_regression_exits_1_and_writes_junit_and_markdown(tmp_path: Path) -> None:
    junit, markdown = tmp_path / "gate.xml", tmp_path / "summary.md"
    proc = run_gate_cli(
        "--baseline", BASE, "--candidate", DROP10, "--junit", junit, "--markdown", markdown
    )
    assert proc.returncode == 1, proc.stderr
    assert "✗ REGRESSION" in proc.stdout
    assert "✓" not in proc.stdout  # only what changed beyond noise is listed
    assert "not compared: 2-1-3 c=1: only in the candidate" in proc.stdout

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "0")) < 8
    (unchanged,) = [c for c in cases if c.get("name") == "unchanged"]
    assert "unchanged within noise" in (unchanged.findtext("system-out") or "")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == int(suite.get("failures", "0")) >= 1
    names = {c.get("name") for c in failed}
    assert "tau[3-4-8, c=8]" in names
    props = {p.get("name"): p.get("value") for p in failed[0].iter("property")}
    assert props["status"] == "regression"
    assert float(props["change"]) < -0.03
    assert float(props["p_value"]) < 0.002
    assert props["method"] == "wilcoxon-paired"
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties") or []}
    assert suite_props["simulated"] == "true"

    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("## specbench gate: ❌ regression")
    assert "| metric | config | concurrency |" in text
    assert "**✗ REGRESSION**" in text
    assert "| ✓ |" not in text and "unchanged within noise" in text
    assert "SIMULATED" in text
    assert "2-1-3 c=1: only in the candidate" in text

    run_gate_cli(
        "--baseline", BASE, "--candidate", DROP10, "--junit", junit, "--markdown", markdown, "-v"
    )
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == 8
    assert "| ✓ |" in markdown.read_text(encoding="utf-8")


def test_noise_passes_and_few_samples_show_tilde(tmp_path: Path) -> None:
    assert run_gate_cli("--baseline", BASE, "--candidate", NOISE).returncode == 0
    markdown = tmp_path / "few.md"
    proc = run_gate_cli("--baseline", FEW_A, "--candidate", FEW_B, "--markdown", markdown)
    assert proc.returncode == 0, proc.stderr
    assert "past it but not significant" in proc.stdout
    verbose = run_gate_cli("--baseline", FEW_A, "--candidate", FEW_B, "--verbose")
    assert "~ insignificant" in verbose.stdout
    assert "t-CI (n=3/3)" in verbose.stdout
    assert "✅ pass" in markdown.read_text(encoding="utf-8")


def test_fingerprint_mismatch_exits_2_unless_forced() -> None:
    proc = run_gate_cli("--baseline", BASE, "--candidate", FEW_B)
    assert_one_line_error(proc, "not comparable", "prompts_sha256", "num_prompts", "--force")
    forced = run_gate_cli("--baseline", BASE, "--candidate", FEW_B, "--force")
    assert forced.returncode in (0, 1), forced.stderr
    assert "FORCED: the workloads differ" in forced.stdout


def test_bad_selection_and_flags_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(
        run_gate_cli("--baseline", BASE, "--candidate", BASE, "--config", "5,4,8"),
        "--config 5-4-8: not in the candidate",
    )
    assert_one_line_error(
        run_gate_cli("--baseline", BASE, "--candidate", BASE, "--max-tau-drop", "3"),
        "ambiguous",
    )
    assert_one_line_error(run_gate_cli("--baseline", BASE), "--candidate")
    assert_one_line_error(
        run_gate_cli("--baseline", BASE, "--candidate", tmp_path / "nope"),
        "no such run directory or baseline file",
    )


def test_save_baseline_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "ci" / "specbench-baseline.json"
    proc = run_gate_cli("--save-baseline", out, BASE, "--config", "3,4,8")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == GATE_BASELINE_KIND and data["schema_version"]
    assert data["manifest"]["simulated"] is True
    assert data["manifest"]["workload"]["num_prompts"] == 24
    cells = {(c["config_key"], c["concurrency"]) for c in data["cells"]}
    assert cells == {("baseline", 1), ("3-4-8", 1), ("baseline", 8), ("3-4-8", 8)}
    cell = next(c for c in data["cells"] if c["config_key"] == "3-4-8")
    assert len(cell["tau_samples"]) == 24 and cell["speedup"] > 1
    assert out.stat().st_size < 20_000  # compact enough to commit

    same = run_gate_cli("--baseline", out, "--candidate", BASE)
    assert same.returncode == 0, same.stderr
    worse = run_gate_cli("--baseline", out, "--candidate", DROP10)
    assert worse.returncode == 1, worse.stderr


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        ("truncate-results", ("results.json", "malformed JSON")),
        ("results-field", ("results.json: trials[1]", "field 'concurrency'")),
        ("results-speedup", ("results.json: trials[1]", "field 'speedup'")),
        ("requests-field", ("requests.jsonl", "field 'e2e_ms'")),
        ("manifest-field", ("manifest.json", "field 'workload'")),
    ],
)
def test_broken_run_directory_exits_2_naming_file_and_field(
    tmp_path: Path, edit: str, needles: tuple[str, ...]
) -> None:
    run = copy_run(BASE, tmp_path / "run")
    if edit == "truncate-results":
        text = (run / "results.json").read_text(encoding="utf-8")
        (run / "results.json").write_text(text[: len(text) // 2], encoding="utf-8")
    elif edit in ("results-field", "results-speedup"):
        data = json.loads((run / "results.json").read_text(encoding="utf-8"))
        if edit == "results-field":
            data["trials"][1]["concurrency"] = "1"
        else:
            data["trials"][1]["speedup"] = "fast"
        (run / "results.json").write_text(json.dumps(data), encoding="utf-8")
    elif edit == "requests-field":
        lines = (run / "requests.jsonl").read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[3])
        record["e2e_ms"] = "slow"
        lines[3] = json.dumps(record)
        (run / "requests.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        data = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        del data["workload"]
        (run / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    proc = run_gate_cli("--baseline", BASE, "--candidate", run)
    assert_one_line_error(proc, str(run), *needles)


def test_broken_baseline_file_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    data = json.loads(BASELINE_FILE.read_text(encoding="utf-8"))
    data["cells"][1]["tau_samples"][3] = "2.5"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data), encoding="utf-8")
    assert_one_line_error(
        run_gate_cli("--baseline", edited, "--candidate", BASE),
        str(edited),
        "cells[1]",
        "field 'tau_samples[3]'",
    )
    truncated = tmp_path / "truncated.json"
    truncated.write_text(BASELINE_FILE.read_text(encoding="utf-8")[:300], encoding="utf-8")
    assert_one_line_error(
        run_gate_cli("--baseline", truncated, "--candidate", BASE), str(truncated), "malformed JSON"
    )
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": "1.0", "kind": "something"}), encoding="utf-8")
    assert_one_line_error(
        run_gate_cli("--baseline", other, "--candidate", BASE), str(other), "field 'kind'"
    )
