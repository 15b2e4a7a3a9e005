"""Per-load recommendations, the three-way verdict, merged trees and intervals."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from specbench.rundir.intervals import RequestBootstrap
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict.candidates import (
    CI_NOISE,
    CI_REQUESTS,
    CI_TRIAL,
    KIND_OFF,
    KIND_SPECULATE,
    KIND_SPECULATE_BELOW,
    candidate_table,
    canonical_tree,
    interpolate_break_even,
)
from specbench.verdict.defaults import compare_defaults
from tests.support.verdict_rows import HOST_STAGED, decide_rows, trial_rows


def test_host_staged_run_speculates_below_a_break_even_and_is_off_above() -> None:
    out = decide_rows(trial_rows(HOST_STAGED), [1, 8, 32], host_staged=True)
    verdict = out
    assert verdict.kind == KIND_SPECULATE_BELOW
    assert verdict.break_even is not None and 1 < verdict.break_even < 8
    # The tie at 1 (within 2% noise) goes to the cheaper tree, which also loses less at 8.
    assert verdict.config == SpecConfig(1, 1, 2)
    recs = {r.concurrency: r for r in out.loads}
    assert recs[1].config == SpecConfig(1, 1, 2)
    assert "2-2-3" in recs[1].equivalent
    for c in (8, 32):
        assert recs[c].config is None
        assert "--speculative" not in recs[c].launch
        assert recs[c].best_speculative is not None
    assert "--speculative-num-steps 1" in recs[1].launch
    assert f"{verdict.break_even:.1f}" in verdict.reason or "below about" in verdict.reason


def test_results_json_contract() -> None:
    out = decide_rows(trial_rows(HOST_STAGED), [1, 8, 32])
    data = json.loads(json.dumps(out.to_json()))
    assert [r["concurrency"] for r in data["recommendations"]] == [1, 8, 32]
    for rec in data["recommendations"]:
        assert set(rec) >= {
            "concurrency",
            "config",
            "speedup",
            "speedup_ci",
            "equivalent",
            "launch",
        }
        low, high = rec["speedup_ci"]
        assert low <= rec["speedup"] <= high
        assert isinstance(rec["equivalent"], list)
    assert data["recommendations"][1]["config"] is None
    assert data["verdict"]["kind"] in ("speculate", "speculate-below", "off")
    assert isinstance(data["verdict"]["break_even"], float)


def test_pays_everywhere_is_speculate_with_a_robust_pick() -> None:
    speedups = {
        # Best at 1 but weak at 32; the robust pick is the one good at every load.
        "5-4-8": {1: 2.0, 8: 1.3, 32: 1.05},
        "3-4-6": {1: 1.9, 8: 1.5, 32: 1.4},
        "5-8-38": {1: 1.7, 8: 1.6, 32: 1.2},
    }
    out = decide_rows(trial_rows(speedups), [1, 8, 32])
    assert out.kind == KIND_SPECULATE
    assert out.break_even is None
    assert out.config == SpecConfig(3, 4, 6)
    recs = {r.concurrency: r.config for r in out.loads}
    assert recs == {1: SpecConfig(3, 4, 6), 8: SpecConfig(3, 4, 6), 32: SpecConfig(3, 4, 6)}
    alone = {r.concurrency: r.dedicated.config if r.dedicated else None for r in out.loads}
    assert alone == {1: SpecConfig(5, 4, 8), 8: SpecConfig(5, 8, 38), 32: None}
    assert "A server for one load alone would run 5-4-8 at concurrency 1" in (
        out.headline.pick_reason
    )
    assert out.worst_fraction_of_best == pytest.approx(1.5 / 1.6)


def test_never_pays_is_off_with_a_plainlaunch_text_line() -> None:
    speedups = {"3-4-8": {1: 0.7, 8: 0.5, 32: 0.4}, "1-1-2": {1: 1.01, 8: 0.9, 32: 0.8}}
    out = decide_rows(trial_rows(speedups), [1, 8, 32], host_staged=True)
    assert out.kind == KIND_OFF
    assert out.config is None
    assert "--speculative" not in out.launch
    assert "host memory" in out.reason
    first = out.loads[0]
    # 1.01x cannot be told apart from no speculation: it is listed as equivalent to off.
    assert first.config is None and first.equivalent == ["1-1-2"]


def test_measured_interval_wins_over_the_noise_fallback() -> None:
    speedups = {"3-4-8": {1: 1.05}, "1-1-2": {1: 1.04}}
    ci = {("3-4-8", 1): (0.98, 1.12)}
    out = decide_rows(trial_rows(speedups, ci), [1])
    cands = {c.key: c for c in out.per_load[1]}
    assert cands["3-4-8"].ci_source == CI_TRIAL and cands["3-4-8"].ci == (0.98, 1.12)
    assert cands["1-1-2"].ci_source == CI_NOISE
    # The best's interval includes 1.0: it does not pay, so the verdict is off.
    assert out.kind == KIND_OFF


def test_trees_built_by_one_draft_step_merge_whatever_topk() -> None:
    assert canonical_tree(SpecConfig(1, 8, 2)) == SpecConfig(1, 1, 2)
    assert canonical_tree(SpecConfig(1, 8, 3)) == SpecConfig(1, 2, 3)
    assert canonical_tree(SpecConfig(1, 8, 4)) == SpecConfig(1, 4, 4)
    assert canonical_tree(SpecConfig(2, 8, 3)) == SpecConfig(2, 8, 3)
    table = candidate_table(trial_rows({"1-1-2": {1: 1.2}, "1-2-2": {1: 1.3}, "1-8-2": {1: 1.1}}))
    assert list(table["config_key"]) == ["1-1-2"]
    assert table["speedup"].iloc[0] == pytest.approx(1.2)
    assert table["aliases"].iloc[0] == ("1-2-2", "1-8-2")


def test_defaults_are_compared_at_every_load() -> None:
    out = decide_rows(trial_rows(HOST_STAGED), [1, 8, 32])
    named = {"model card": SpecConfig(3, 4, 8), "SGLang automatic": SpecConfig(5, 4, 8)}
    card, auto = compare_defaults(out.per_load, named)
    assert card.points[8] is not None and card.points[8].speedup == pytest.approx(0.55)
    assert all(p is None for p in auto.points.values())
    assert card.to_json()["by_concurrency"]["1"]["speedup"] == pytest.approx(0.91)


def test_break_even_is_log_linear_and_never_extrapolated() -> None:
    assert interpolate_break_even(8, 1.2, 32, 0.8) == pytest.approx(16.0)
    assert interpolate_break_even(1, 1.1, 8, 1.05) == pytest.approx(8.0)


@dataclass
class _Req:
    prompt_id: str
    config_key: str
    concurrency: int
    completion_tokens: int
    e2e_ms: float | None
    error: str | None = None


def test_request_bootstrap_is_seeded_and_brackets_the_speedup() -> None:
    records = []
    for i in range(16):
        spread = 1.0 + 0.1 * ((i * 7) % 5 - 2)
        records.append(_Req(f"p{i}", BASELINE_KEY, 1, 256, 10_000.0 * spread))
        records.append(_Req(f"p{i}", "3-4-8", 1, 256, 5_000.0 * spread * (1 + 0.03 * (i % 3))))
    boot = RequestBootstrap(records)
    first = boot("3-4-8", 1, 1.9)
    assert first is not None
    low, high, source = first
    assert source == CI_REQUESTS and low < 1.9 < high and high - low < 0.3
    assert RequestBootstrap(records)("3-4-8", 1, 1.9) == first
    assert boot("3-4-8", 8, 1.9) is None  # no baseline requests at 8
    assert RequestBootstrap(records[:4])("3-4-8", 1, 1.9) is None  # too few pairs


def test_terminal_lines_say_what_results_json_says() -> None:
    from specbench.verdict.text import summary_lines

    out = decide_rows(trial_rows(HOST_STAGED), [1, 8, 32])
    data = out.to_json()
    data["defaults"] = [
        d.to_json() for d in compare_defaults(out.per_load, {"model card": SpecConfig(3, 4, 8)})
    ]
    lines = summary_lines(json.loads(json.dumps(data)))
    # The headline comes first: what to launch, how sure, against what, at what cost.
    assert lines[0].startswith("Launch 1-1-2 below about ")
    assert "[1.20-1.25] at concurrency 1 (95% interval)" in lines[0]
    assert "time to first token" in lines[0]
    assert any(line.startswith("verdict: speculate-below (break-even ~") for line in lines)
    at_8 = next(i for i, line in enumerate(lines) if line.startswith("  at concurrency 8: off"))
    assert "best tree 1-1-2 0.93x [" in lines[at_8]
    assert "--speculative" not in lines[at_8 + 1]
    assert lines[at_8 + 1].strip().startswith("python -m")
    card = next(i for i, line in enumerate(lines) if line.startswith("  model card (3-4-8)"))
    assert lines[card].startswith("  model card (3-4-8): 0.91x [")
    assert summary_lines({}) == []


def test_mixed_load_pick_pays_at_every_load_it_is_launched_for() -> None:
    speedups = {
        "3-4-8": {1: 1.9, 8: 1.015},  # near-best at both, but within noise of 1.0 at 8
        "5-4-8": {1: 2.0, 8: 0.5},
        "2-1-3": {1: 1.04, 8: 1.06},
    }
    out = decide_rows(trial_rows(speedups), [1, 8])
    assert out.kind == "speculate"
    assert out.config == SpecConfig(2, 1, 3)


def test_configurations_of_different_methods_never_merge() -> None:
    ngram = SpecConfig.parse("ngram:1,1,2:prompt_lookup_max=3")
    assert canonical_tree(ngram) == ngram
    assert canonical_tree(SpecConfig.parse("mtp:1,8,3")) == SpecConfig.parse("mtp:1,2,3")
