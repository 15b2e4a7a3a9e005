"""What to do after a run: the lines a command prints last.

A run that ends with a relative path leaves the user to work out the next command.
These helpers turn a finished run into commands to paste: open the report (a file://
URL most terminals make clickable), gate a later run against this one, and resume the
same run when something failed or was interrupted. They are pure string builders, so
every command phrases them alike and tests can check them without running anything.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

#: The R^2 threshold of a poor all-reduce fit as printed (specbench.topology.fit's
#: POOR_FIT_R2; tests/cli/test_next_steps.py holds them equal). Not imported from there:
#: the topology package loads numpy, and this module is on the ``-h`` path.
POOR_FIT_R2_TEXT = "0.95"

#: Options whose value names the run directory (removed before ``--out`` is re-added).
_OUT_FLAGS = ("--out",)


def file_url(path: Path) -> str:
    """``report.html`` -> ``file:///abs/path/report.html`` (percent-encoded, clickable)."""
    return path.expanduser().resolve().as_uri()


def shell_join(argv: Sequence[str]) -> str:
    """A command line a POSIX shell reads back as exactly ``argv``."""
    return shlex.join(argv)


def gate_command(run_dir: Path, candidate: str = "NEW_RUN_DIR") -> str:
    """The command that checks a later run against ``run_dir`` as the baseline."""
    return shell_join(["specbench", "gate", "--baseline", str(run_dir), "--candidate", candidate])


def save_baseline_command(run_dir: Path, baseline_file: str = "specbench-baseline.json") -> str:
    """The command that turns ``run_dir`` into a small baseline file to commit for CI."""
    return shell_join(["specbench", "gate", "--save-baseline", baseline_file, str(run_dir)])


def resume_command(argv: Sequence[str], run_dir: Path) -> str:
    """``argv`` (the command as run, ``specbench`` first) pointed at ``run_dir``.

    Any ``--out`` the user gave is replaced, so the printed command resumes this very
    directory even when the first run picked a timestamped default.
    """
    kept: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in _OUT_FLAGS:
            skip_next = True
            continue
        if any(arg.startswith(f"{flag}=") for flag in _OUT_FLAGS):
            continue
        kept.append(arg)
    return shell_join([*kept, "--out", str(run_dir)])


def run_next_steps(
    *,
    argv: Sequence[str],
    run_dir: Path,
    report: Path | None,
    failed: int = 0,
    interrupted: bool = False,
) -> list[str]:
    """The closing lines of a sweep: report URL, gate command, and resume when needed."""
    lines: list[str] = []
    if report is not None:
        lines.append(f"report: {file_url(report)}")
    else:
        lines.append(f"report: {shell_join(['specbench', 'report', str(run_dir)])}")
    lines.append(f"gate a later run against this one: {gate_command(run_dir)}")
    if failed or interrupted:
        why = "interrupted" if interrupted else f"{failed} configuration(s) failed"
        lines.append(
            f"{why}; finished configurations are kept. Resume: {resume_command(argv, run_dir)}"
        )
    return lines


def probe_next_steps(
    *, interconnect_class: str, poor_fits: Sequence[str], out: Path | None
) -> list[str]:
    """The closing lines of a probe: a flag per poor fit, then the command that uses it.

    ``poor_fits`` are the flagged series described (``gloo cpu 2 ranks: R^2 0.81, ...``);
    ``out`` is the JSON written, if any (predict and sweep take it as ``--hardware``).
    """
    lines = [
        f"poor fit: {fit} (R^2 below {POOR_FIT_R2_TEXT}): latency + bytes/bandwidth does "
        "not describe these timings (a busy host, or a protocol switch between sizes); "
        "probe again on an idle host, without --quick, before predicting from it"
        for fit in poor_fits
    ]
    saved = str(out) if out is not None else "probe.json"
    use = shell_join(["specbench", "predict", "--hardware", saved])
    if interconnect_class == "cpu-only":
        lines.append(
            "next: no GPU here, so these are gloo-on-CPU timings, not a GPU interconnect; "
            "run `specbench probe --out probe.json` on the GPU host, or rehearse a sweep "
            "here with `specbench sweep --backend sim`"
        )
    elif out is None:
        lines.append(
            f"next: save it with `specbench probe --out {saved}`, then `{use}` "
            "(sweep takes the same --hardware)"
        )
    else:
        lines.append(f"next: `{use}` (sweep takes the same --hardware)")
    return lines


__all__ = [
    "file_url",
    "gate_command",
    "probe_next_steps",
    "resume_command",
    "run_next_steps",
    "save_baseline_command",
    "shell_join",
]
