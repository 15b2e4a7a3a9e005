"""Colours follow the intervals, and a configuration keeps its colour (issue 22 item 5).

On main, 1.02x [0.97-1.07] was green and 0.98x [0.95-1.01] red although both intervals
include 1.0x; the pick was blue, orange or green depending on the plot, and blue also
meant "no speculation".
"""

from __future__ import annotations

import re
from pathlib import Path

from specbench.report import colours
from specbench.report.html import render_report
from specbench.report.verdict_plots import heatmap_svg, latency_svg
from specbench.report.verdict_views import Interval, LatencySeries, verdict_screen
from specbench.report.views import Overview
from specbench.spec_config import SpecConfig
from tests.support.run_dirs import write_run
from tests.support.verdict_rows import decide_rows, trial_rows


def test_only_a_whole_interval_past_one_is_coloured() -> None:
    assert Interval(1.02, 0.97, 1.07).tone == colours.TONE_NEUTRAL
    assert Interval(0.98, 0.95, 1.01).tone == colours.TONE_NEUTRAL
    assert Interval(1.10, 1.05, 1.15).tone == colours.TONE_PAYS
    assert Interval(0.90, 0.85, 0.95).tone == colours.TONE_LOSES
    assert not Interval(0.98, 0.95, 1.01).loses


def test_the_comparison_table_paints_a_card_within_noise_plain() -> None:
    rows = trial_rows(
        {"1-1-2": {1: 1.27, 8: 0.98, 32: 0.96}, "3-4-8": {1: 1.02, 8: 0.61, 32: 0.57}},
        ci={
            ("1-1-2", 1): (1.24, 1.30),
            ("1-1-2", 8): (0.95, 1.01),
            ("1-1-2", 32): (0.93, 0.98),
            ("3-4-8", 1): (0.97, 1.07),
            ("3-4-8", 8): (0.58, 0.65),
            ("3-4-8", 32): (0.55, 0.60),
        },
    )
    out = decide_rows(rows, [1, 8, 32], defaults={"model card": SpecConfig(3, 4, 8)})
    screen = verdict_screen(out)
    card = next(r for r in screen.comparison if r.config_key == "3-4-8")
    assert [c.tone if c else None for c in card.cells] == ["neutral", "nopay", "nopay"]
    mixed = next(r for r in screen.comparison if r.name.startswith("specbench: one tree"))
    assert [c.tone if c else None for c in mixed.cells] == ["pays", "neutral", "nopay"]


def test_every_coloured_cell_of_a_report_agrees_with_its_interval(tmp_path: Path) -> None:
    page = render_report(write_run(tmp_path / "run", failed=0)).read_text(encoding="utf-8")
    cells = re.findall(
        r'<span class="iv (pays|nopay|neutral)">([\d.]+)x <span class="ci">\[([\d.]+)-([\d.]+)\]',
        page,
    )
    assert cells
    for tone, _, low, high in cells:
        expected = colours.tone(float(low), float(high))
        # the page rounds to two digits: a bound printed as 1.00 may lie either side
        if "1.00" not in (low, high):
            assert tone == expected, (tone, low, high)
    assert 'class="muted small tone-legend"' in page


def test_the_pick_and_no_speculation_have_one_colour_each() -> None:
    series = [
        LatencySeries("no speculation", [1, 8], [20.0, 30.0], [12.0, 16.0], [80.0, 500.0]),
        LatencySeries("2-1-3 (pick)", [1, 8], [20.0, 33.0], [5.0, 9.0], [130.0, 640.0]),
        LatencySeries("3-4-8 (model card)", [1, 8], [20.0, 37.0], [6.0, 11.0], [140.0, 600.0]),
    ]
    svg = latency_svg(series)
    strokes = set(re.findall(r"stroke: (#[0-9a-f]{6})", svg))
    assert {colours.PICK.lower(), colours.NO_SPECULATION, colours.MODEL_CARD.lower()} <= strokes
    assert colours.series_colour("2-1-3 (mixed-load pick)", 0) == colours.PICK
    assert colours.series_colour("2-1-3 (pick)", 5) == colours.PICK
    assert colours.series_colour("no speculation (1.0x)", 0) == colours.NO_SPECULATION
    assert colours.series_colour("SGLang automatic choice (3-1-4)", 0) == colours.AUTOMATIC
    assert colours.PICK not in colours.OTHERS and colours.NO_SPECULATION not in colours.OTHERS


def test_heatmap_marks_the_pick_and_leaves_cells_within_noise_plain() -> None:
    svg = heatmap_svg(
        1,
        [1, 2],
        [1, 4],
        [[1.01, None], [1.4, 0.7]],
        [[2, None], [3, 5]],
        tones=[["neutral", ""], ["pays", "nopay"]],
        pick_cell=(1, 0),
        pick_key="2-1-3",
    )
    assert "pick 2-1-3's cell" in svg and "within noise of 1.0x" in svg
    assert "fill: #f7f7f7" in svg  # the within-noise cell
    assert f"stroke: {colours.PICK.lower()}" in svg


def test_trial_numbers_past_the_count_are_explained() -> None:
    common = dict.fromkeys(
        ("target", "backend", "strategy", "created_at", "specbench_version", "command"), ""
    )
    overview = Overview(
        **common,  # type: ignore[arg-type]
        simulated=True,
        concurrencies=[1],
        primary_concurrency=1,
        target_model="t",
        draft_model="d",
        algorithm="EAGLE3",
        dataset="builtin",
        num_prompts=16,
        max_new_tokens=256,
        workload_digest="x",
        num_trials=30,
        num_completed=30,
        num_failed=0,
        num_requests=100,
        search_trials=35,
        reused=5,
    )
    assert overview.trials_text == (
        "30 trials (30 completed, 0 failed), numbered 0-34: the search ran 35 trials and 5 "
        "of them repeated a configuration already measured, whose result was reused"
    )
