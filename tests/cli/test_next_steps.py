"""The closing lines of a run: clickable report, gate command, resume command."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from specbench.cli.next_steps import (
    file_url,
    gate_command,
    probe_next_steps,
    resume_command,
    run_next_steps,
    save_baseline_command,
)


def test_file_url_is_absolute_and_percent_encoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = file_url(Path("runs/a b/report.html"))
    assert url == f"file://{tmp_path}/runs/a%20b/report.html"


def test_gate_and_save_baseline_commands_quote_paths() -> None:
    run = Path("runs/my run")
    assert shlex.split(gate_command(run)) == [
        "specbench",
        "gate",
        "--baseline",
        "runs/my run",
        "--candidate",
        "NEW_RUN_DIR",
    ]
    assert shlex.split(save_baseline_command(run)) == [
        "specbench",
        "gate",
        "--save-baseline",
        "specbench-baseline.json",
        "runs/my run",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["specbench", "sweep", "--target", "minimax-m2.7", "--out", "old"],
        ["specbench", "sweep", "--target", "minimax-m2.7", "--out=old"],
        ["specbench", "sweep", "--target", "minimax-m2.7"],
    ],
)
def test_resume_points_at_the_run_directory_whatever_out_was(argv: list[str]) -> None:
    command = resume_command(argv, Path("runs/20260101-x"))
    assert shlex.split(command) == [
        "specbench",
        "sweep",
        "--target",
        "minimax-m2.7",
        "--out",
        "runs/20260101-x",
    ]


def test_next_steps_offer_resume_only_when_something_is_left(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    argv = ["specbench", "sweep"]
    clean = run_next_steps(argv=argv, run_dir=tmp_path, report=report)
    assert clean[0] == f"report: {report.as_uri()}"
    assert clean[1].startswith("gate a later run against this one: specbench gate --baseline")
    assert len(clean) == 2
    failed = run_next_steps(argv=argv, run_dir=tmp_path, report=None, failed=2)
    assert failed[0] == f"report: specbench report {tmp_path}"
    assert failed[-1].startswith("2 configuration(s) failed; finished configurations are kept.")
    assert failed[-1].endswith(f"specbench sweep --out {tmp_path}")
    stopped = run_next_steps(argv=argv, run_dir=tmp_path, report=None, interrupted=True)
    assert stopped[-1].startswith("interrupted;")


def test_probe_flags_each_poor_fit_and_ends_with_a_next_step() -> None:
    lines = probe_next_steps(
        interconnect_class="cpu-only", poor_fits=["gloo cpu 2 ranks: R^2 0.81"], out=None
    )
    assert lines[0].startswith("poor fit: gloo cpu 2 ranks: R^2 0.81")
    assert lines[-1].startswith("next: ") and "--backend sim" in lines[-1]
    saved = probe_next_steps(interconnect_class="nvlink", poor_fits=[], out=Path("p.json"))
    assert saved == [
        "next: `specbench predict --hardware p.json` (sweep takes the same --hardware)"
    ]
