"""What the gate says first: PASS/FAIL and why, the recommendation, hardware, counts.

Issue 22 items 7 and 8: an h200 run gated against an l40s run printed 63 regressions
and ~100 "not compared" lines before its answer, never saying the hardware differed;
a rerun whose pick flipped (2-1-3 -> 2-8-4) passed without a word about it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from specbench.errors import NotComparableError
from specbench.gate.compare import compare, run_gate
from specbench.gate.inputs import load_side, save_baseline
from specbench.gate.output import (
    junit_tree,
    not_compared_lines,
    print_result,
    render_gate_markdown,
)
from specbench.gate.picks import RecommendedPick, compare_picks, read_pick
from specbench.gate.results import GateOptions
from tests.support.gate_runs import BASE, DROP10, copy_run


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def with_hardware(tmp_path: Path, folder: str, **hardware: Any) -> Path:
    run = copy_run(BASE, tmp_path / folder)
    edit_json(run / "manifest.json", lambda m: m["hardware"].update(hardware))
    return run


def with_verdict(
    tmp_path: Path,
    name: str,
    pick: str | None,
    kind: str = "speculate",
    intervals: dict[tuple[str, int], tuple[float, float]] | None = None,
    source: Path = BASE,
) -> Path:
    """A golden run whose results.json recommends ``pick``, with speedup intervals."""
    run = copy_run(source, tmp_path / name)

    def change(data: dict[str, Any]) -> None:
        data["verdict"] = {
            "kind": kind,
            "config": None if pick is None else {"key": pick},
            "speculate_at": [] if pick is None else [1, 8],
        }
        for row in data["trials"]:
            ci = (intervals or {}).get((row["config_key"], row["concurrency"]))
            if ci is not None:
                row["speedup_ci_low"], row["speedup_ci_high"] = ci

    edit_json(run / "results.json", change)
    return run


def printed(result: Any, verbose: bool = False) -> list[str]:
    buf = io.StringIO()
    print_result(result, Console(file=buf, width=300), verbose=verbose)
    return buf.getvalue().splitlines()


# ---------------------------------------------------------------------- hardware (8)


def test_runs_on_other_hardware_are_refused_in_one_line_naming_both(tmp_path: Path) -> None:
    h200 = with_hardware(tmp_path, "h200", gpu="NVIDIA H200 SXM 141GB")
    l40s = with_hardware(
        tmp_path,
        "l40s",
        name="l40s-pcie-host-staged",
        gpu="NVIDIA L40S",
        interconnect_class="host-staged",
    )
    with pytest.raises(NotComparableError) as caught:
        run_gate(h200, l40s)
    message = str(caught.value)
    assert "\n" not in message
    for needle in ("h200-nvlink", "NVIDIA H200", "l40s-pcie-host-staged", "NVIDIA L40S"):
        assert needle in message, message
    assert message.endswith("pass --force to compare anyway")

    forced = run_gate(h200, l40s, GateOptions(force=True))
    assert forced.forced
    assert forced.hardware_differences == [
        "GPU: NVIDIA H200 SXM 141GB != NVIDIA L40S",
        "interconnect: nvlink != host-staged",
    ]
    lines = printed(forced)
    assert "FORCED: the hardware differs (GPU: NVIDIA H200 SXM 141GB != NVIDIA L40S;" in (
        "\n".join(lines)
    )


def test_other_tp_is_other_hardware_but_an_unknown_side_is_not(tmp_path: Path) -> None:
    tp8 = with_hardware(tmp_path, "tp8", tp=8)
    with pytest.raises(NotComparableError, match=r"TP 4\).* TP 8\)"):
        run_gate(BASE, tp8)
    # An endpoint run knows no GPU nor interconnect: the gate cannot tell, so it compares.
    endpoint = with_hardware(tmp_path, "endpoint", name="unknown", interconnect_class="unknown")
    assert run_gate(BASE, endpoint).passed


def test_the_answer_comes_first_with_its_reason() -> None:
    failing = printed(run_gate(BASE, DROP10))
    assert failing[0].startswith("gate FAIL (SIMULATED): "), failing
    assert "regressed beyond noise, the worst " in failing[0]
    assert "3-4-8 c=" in failing[0]
    passing = printed(run_gate(BASE, BASE))
    assert passing[0].startswith("gate PASS (SIMULATED): no metric dropped"), passing
    markdown = render_gate_markdown(run_gate(BASE, DROP10)).splitlines()
    assert markdown[0] == "## specbench gate: ❌ regression"
    assert markdown[2].startswith("**gate FAIL (SIMULATED): ")


def test_many_cells_not_compared_are_one_count_line(tmp_path: Path) -> None:
    result = run_gate(BASE, DROP10)
    result.not_compared = [f"9-9-{n} c=1: only in the candidate" for n in range(40)] + [
        f"8-8-{n} c=8: only in the baseline" for n in range(20)
    ]
    (line,) = not_compared_lines(result)
    assert line == (
        "not compared: 60 cells (40 only in the candidate, 20 only in the baseline); "
        "--verbose lists each"
    )
    shown = printed(result)
    assert sum(1 for s in shown if s.startswith("not compared")) == 1
    assert len(not_compared_lines(result, verbose=True)) == 60
    assert "not compared: 60 cells" in render_gate_markdown(result)
    out = junit_tree(result).getroot().find("testsuite/system-out")
    assert out is not None and (out.text or "").startswith("not compared: 60 cells")


# --------------------------------------------------------------- recommendation (7)


def test_a_flipped_pick_the_candidate_did_not_measure_everywhere_is_flagged(tmp_path: Path) -> None:
    base = with_verdict(tmp_path, "a", "3-4-8")
    ci = {("3-4-8", 1): (1.80, 1.95), ("3-4-8", 8): (1.30, 1.40)}
    ci |= {("2-1-3", 1): (1.55, 1.85)}
    cand = with_verdict(tmp_path, "b", "2-1-3", intervals=ci, source=DROP10)
    result = run_gate(base, cand)
    assert result.picks is not None and result.picks.changed
    assert result.picks.matters is None  # 2-1-3 was measured only at concurrency 1
    assert "cannot tell" in result.picks.line() and "--config 3,4,8;2,1,3" in result.picks.line()
    lines = printed(result)
    assert lines[1].startswith("recommendation changed: 3-4-8 (speculate) -> 2-1-3 (speculate)")


def test_pick_change_within_and_beyond_noise() -> None:
    old, new = (
        RecommendedPick("speculate", "2-1-3", (1, 8)),
        RecommendedPick("speculate", "2-8-4", (1, 8)),
    )
    overlapping = {
        ("2-1-3", 1): (1.65, 1.58, 1.72),
        ("2-8-4", 1): (1.73, 1.67, 1.79),
        ("2-1-3", 8): (1.30, 1.24, 1.36),
        ("2-8-4", 8): (1.28, 1.23, 1.33),
    }
    same = compare_picks(old, new, overlapping)
    assert same.changed and same.matters is False
    assert same.line().startswith("recommendation changed: 2-1-3 (speculate) -> 2-8-4")
    assert "within noise" in same.line() and "1.65x [1.58-1.72] vs 1.73x [1.67-1.79] at 1" in (
        same.line()
    )
    apart = dict(overlapping)
    apart[("2-1-3", 8)] = (1.10, 1.05, 1.15)
    worse = compare_picks(old, new, apart)
    assert worse.matters is True and "beyond noise" in worse.line() and "at 8" in worse.line()
    off = compare_picks(old, RecommendedPick("off", None), overlapping)
    assert off.matters is True and "no speculation (off)" in off.line()
    below = compare_picks(old, RecommendedPick("speculate-below", "2-1-3", (1,)), overlapping)
    assert below.matters is True and "from speculate to speculate-below" in below.line()
    unchanged = compare_picks(old, old, overlapping)
    assert unchanged.line() == "recommendation unchanged: 2-1-3 in both runs"


def test_the_pick_survives_a_saved_baseline_file(tmp_path: Path) -> None:
    run = with_verdict(tmp_path, "a", "3-4-8")
    saved = save_baseline(run, tmp_path / "baseline.json")
    side = load_side(saved)
    assert side.pick == RecommendedPick("speculate", "3-4-8", (1, 8))
    result = compare(side, load_side(run))
    assert result.picks is not None and not result.picks.changed
    assert "recommendation unchanged: 3-4-8 in both runs" in printed(result)[1]


def test_runs_without_a_verdict_or_with_a_bad_one_have_no_pick() -> None:
    assert read_pick(None) is None
    assert read_pick({"kind": 3}) is None
    assert read_pick({"kind": "off", "config": None}) == RecommendedPick("off", None)
    assert run_gate(BASE, DROP10).picks is None
