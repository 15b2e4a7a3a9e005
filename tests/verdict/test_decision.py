"""The verdict rules: per-load picks, the mixed-load pick, noise, break-even, odd inputs."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest

from specbench.rundir.layout import normalise_trials
from specbench.verdict.candidates import NOISE_MARGIN, config_table, interpolate_break_even
from specbench.verdict.decision import (
    STATUS_CROSSES,
    STATUS_NEVER_PAYS,
    STATUS_PAYS_EVERYWHERE,
    STATUS_UNKNOWN,
    decide,
)
from tests.support.trials import trial_row

NAN = float("nan")


def row(
    key: str,
    concurrency: int,
    speedup: float | None,
    tau: float | None = 2.5,
    *,
    state: str = "complete",
    number: int = 0,
) -> dict[str, Any]:
    return trial_row(key, concurrency, speedup, tau, state=state, number=number)


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return normalise_trials(rows)


def curve(
    key: str, speedups: dict[int, float], tau: float = 2.6, number: int = 0
) -> list[dict[str, Any]]:
    return [row(key, c, s, tau, number=number) for c, s in speedups.items()]


def test_best_is_the_robust_pick_at_every_load_and_each_load_keeps_its_own() -> None:
    trials = frame(
        curve("3-4-8", {1: 1.9, 8: 1.5, 32: 1.2}, number=0)
        + curve("5-4-8", {1: 2.1, 8: 1.1, 32: 0.7}, number=1)
        + [row("baseline", c, NAN, None) for c in (1, 8, 32)]
    )
    verdict = decide(trials, [1, 8, 32])
    assert verdict.kind == "speculate"
    # 5-4-8 wins at 1 but loses at 32: the one tree for mixed load is 3-4-8.
    assert verdict.to_json()["best"] is not None
    assert verdict.to_json()["best"]["config_key"] == "3-4-8"
    assert verdict.to_json()["best"]["speedup"] == pytest.approx(1.9)
    assert verdict.to_json()["best"]["concurrency"] == 1
    assert verdict.to_json()["best"]["speedup_by_concurrency"] == {"1": 1.9, "8": 1.5, "32": 1.2}
    # One server, one tree: every load names the mixed-load pick (issue 22 item 4); the
    # tree a server for concurrency 1 alone would run stays beside it, not instead of it.
    picks = {r.concurrency: r.config for r in verdict.loads}
    assert {c: p.key if p else None for c, p in picks.items()} == {
        1: "3-4-8",
        8: "3-4-8",
        32: "3-4-8",
    }
    dedicated = {r.concurrency: r.dedicated.key if r.dedicated else None for r in verdict.loads}
    assert dedicated == {1: "5-4-8", 8: None, 32: None}
    # The ranking (every top table) leads with the pick, then the rest by speedup at the
    # primary concurrency: one best on every surface (issue 22 item 4).
    assert [c.key for c in verdict.ranking()] == ["3-4-8", "5-4-8"]


def test_ties_within_noise_go_to_the_cheaper_tree() -> None:
    trials = frame(curve("5-4-8", {1: 1.51}, number=0) + curve("3-4-8", {1: 1.50}, number=1))
    verdict = decide(trials, [1])
    assert (
        verdict.to_json()["best"] is not None and verdict.to_json()["best"]["config_key"] == "3-4-8"
    )
    assert verdict.loads[0].equivalent == ["5-4-8"]


def test_crosses_interpolates_break_even_in_log_concurrency() -> None:
    trials = frame(curve("3-4-8", {1: 1.5, 8: 1.2, 32: 0.8}))
    verdict = decide(trials, [1, 8, 32])
    assert verdict.kind == "speculate-below"
    assert verdict.status == STATUS_CROSSES
    assert verdict.break_even == pytest.approx(16.0)
    assert verdict.speculation_recommended
    assert "below about 16 concurrent requests" in verdict.reason


def test_crossing_within_noise_breaks_even_at_the_measured_point() -> None:
    # 1.01x at 8 is within noise: it does not pay there, yet never dropped below 1.0.
    trials = frame(curve("3-4-8", {1: 1.5, 8: 1.01}))
    verdict = decide(trials, [1, 8])
    assert verdict.status == STATUS_CROSSES
    assert verdict.break_even == pytest.approx(8.0)


def test_pays_everywhere_does_not_extrapolate() -> None:
    trials = frame(curve("3-4-8", {1: 1.8, 8: 1.5, 32: 1.2}))
    verdict = decide(trials, [1, 8, 32])
    assert verdict.kind == "speculate"
    assert verdict.status == STATUS_PAYS_EVERYWHERE
    assert verdict.break_even is None
    assert "above concurrency 32" in verdict.reason


@pytest.mark.parametrize("margin_case", [1.0 + NOISE_MARGIN / 2, 0.97])
def test_never_pays_within_noise_margin(margin_case: float) -> None:
    trials = frame(curve("3-4-8", {1: margin_case, 8: 0.8}))
    verdict = decide(
        trials, [1, 8], launch_line=lambda c: ([], f"spec {c.key}"), plain_launch="plain"
    )
    assert verdict.kind == "off"
    assert verdict.status == STATUS_NEVER_PAYS
    assert not verdict.speculation_recommended
    assert verdict.to_json()["best"] is None
    assert [r.launch for r in verdict.loads] == ["plain", "plain"]
    assert verdict.to_json()["verdict"]["launch"] == "plain"
    assert verdict.reason.startswith("Turn speculation off")


def test_never_pays_names_host_staged_interconnect() -> None:
    trials = frame(curve("3-4-8", {1: 0.9}))
    verdict = decide(trials, [1], hardware_class="host-staged")
    assert "host memory" in verdict.reason


def test_failed_and_baseline_rows_are_ignored() -> None:
    trials = frame(
        [
            *curve("3-4-8", {1: 1.4}),
            row("5-4-8", 1, 3.0, 3.0, state="failed", number=1),
            row("baseline", 1, NAN, None),
        ]
    )
    verdict = decide(trials, [1])
    assert (
        verdict.to_json()["best"] is not None and verdict.to_json()["best"]["config_key"] == "3-4-8"
    )
    assert [c.key for c in verdict.ranking()] == ["3-4-8"]


def test_repeated_configuration_is_averaged() -> None:
    trials = frame([row("3-4-8", 1, 1.4, 2.4, number=0), row("3-4-8", 1, 1.6, 2.8, number=5)])
    table = config_table(trials)
    assert len(table) == 1
    assert table.loc[0, "speedup"] == pytest.approx(1.5)
    assert table.loc[0, "trials"] == 2


def test_nan_speedups_without_baseline_are_unknown_not_a_crash() -> None:
    trials = frame([row("3-4-8", 1, NAN, 2.6, number=0), row("5-4-8", 1, None, 3.1, number=1)])
    verdict = decide(trials, [1, 8])
    assert verdict.status == STATUS_UNKNOWN
    assert verdict.speculation_recommended is False
    assert verdict.to_json()["best"] is None
    assert "baseline" in verdict.reason
    json.dumps(verdict.to_json(), allow_nan=False)


def test_nan_speedup_at_higher_concurrency_is_skipped() -> None:
    trials = frame(curve("3-4-8", {1: 1.5, 8: NAN, 32: 1.3}))
    verdict = decide(trials, [1, 8, 32])
    assert verdict.status == STATUS_PAYS_EVERYWHERE
    assert verdict.to_json()["best"] is not None
    assert verdict.to_json()["best"]["speedup_by_concurrency"]["8"] is None
    assert [r.concurrency for r in verdict.loads] == [1, 32]


def test_no_completed_configuration() -> None:
    trials = frame([row("3-4-8", 1, None, None, state="failed"), row("baseline", 1, NAN, None)])
    verdict = decide(trials, [1, 8], simulated=True, plain_launch="plain")
    assert verdict.to_json()["best"] is None
    assert verdict.status == STATUS_UNKNOWN
    assert verdict.reason.startswith("SIMULATED: ")
    body = verdict.to_json()
    assert body["verdict"]["kind"] == "off" and body["verdict"]["launch"] == "plain"
    # The baseline ran at 1: that load is answered (no speculation), without a speedup.
    assert [(r["concurrency"], r["config"], r["speedup"]) for r in body["recommendations"]] == [
        (1, None, None)
    ]
    assert decide(frame([]), [1]).to_json()["best"] is None


def test_single_trial_single_concurrency() -> None:
    verdict = decide(frame([row("3-4-8", 1, 1.7)]), [1])
    assert verdict.status == STATUS_PAYS_EVERYWHERE
    assert "above concurrency 1, the highest tested" in verdict.reason


def test_simulated_label_and_json_shape() -> None:
    verdict = decide(frame(curve("3-4-8", {1: 1.9, 8: 0.9})), [1, 8], simulated=True)
    body = verdict.to_json()
    assert set(body) == {
        "best",
        "break_even",
        "verdict_reason",
        "recommendations",
        "verdict",
        "defaults",
        "decision",
    }
    assert body["verdict_reason"].startswith("SIMULATED: ")
    assert body["verdict"]["kind"] == "speculate-below"
    assert set(body["break_even"]) == {"concurrency", "status", "speculation_recommended", "reason"}
    best = body["best"]
    for key in (
        "num_steps",
        "topk",
        "num_draft_tokens",
        "config_key",
        "tau",
        "speedup",
        "concurrency",
        "speedup_by_concurrency",
        "flags",
        "launch_command",
    ):
        assert key in best
    json.dumps(body, allow_nan=False)


def test_interpolation_edges() -> None:
    assert interpolate_break_even(8, 1.2, 32, 0.8) == pytest.approx(16.0)
    assert interpolate_break_even(1, 2.0, 8, 1.0) == pytest.approx(8.0)
    assert interpolate_break_even(1, 1.1, 8, 1.1) == 8.0
    assert math.isfinite(interpolate_break_even(1, 1.5, 4, 0.5))
