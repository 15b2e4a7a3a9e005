"""A break-even is only stated with its interval and the loads behind it (issue 22 item 7).

On main, an l40s run printed "break-even about 7" from concurrency 1 (1.27x) and 8
(0.98x [0.95-1.01]): the second point is within noise of 1.0x, so the crossing could lie
at 8 or above, and nothing said so.
"""

from __future__ import annotations

import json

import pytest

from specbench.rundir.break_even import locate_break_even, range_text_of
from specbench.verdict.candidates import KIND_SPECULATE_BELOW
from specbench.verdict.text import summary_lines
from tests.support.verdict_rows import decide_rows, trial_rows

#: The l40s host-staged sweep's pick 1-1-2 (SIMULATED, measured on main).
AT_1 = (1.27, 1.24, 1.30)
WITHIN_NOISE_AT_8 = (0.98, 0.95, 1.01)


def test_a_crossing_whose_upper_load_is_within_noise_is_not_located() -> None:
    be = locate_break_even(1, AT_1, 8, WITHIN_NOISE_AT_8, measured=[1, 8, 32])
    assert not be.located and be.high is None
    assert be.low == pytest.approx(5.63, abs=0.05)  # through the lower bounds
    assert be.low < be.point <= 8
    assert be.range_text() == "5.6-8+"
    phrase = be.phrase()
    assert "cannot locate" in phrase and "0.98x [0.95-1.01] is within noise of 1.0x" in phrase
    assert "the loads tested, 1 and 8" in phrase
    assert be.suggested_loads == (1, 2, 4, 8, 32)
    assert "--concurrency 1,2,4,8,32" in phrase
    assert "about 7 concurrent" not in phrase


def test_a_crossing_between_two_clear_points_has_an_interval_around_it() -> None:
    be = locate_break_even(1, AT_1, 8, (0.90, 0.87, 0.93))
    assert be.located and be.high is not None
    assert 1 < be.low < be.point < be.high < 8
    assert be.range_text().startswith(f"{be.point:.1f} (")
    assert "within the intervals" in be.phrase() and "1 and 8" in be.phrase()
    data = json.loads(json.dumps(be.to_json()))
    assert data["located"] is True and data["loads"] == [1, 8]
    assert range_text_of(data) == be.range_text()


def test_the_verdict_says_the_loads_cannot_place_it() -> None:
    rows = trial_rows(
        {"1-1-2": {1: 1.27, 8: 0.98, 32: 0.96}, "2-2-3": {1: 1.25, 8: 0.90, 32: 0.85}},
        ci={
            ("1-1-2", 1): (1.24, 1.30),
            ("1-1-2", 8): (0.95, 1.01),
            ("1-1-2", 32): (0.93, 0.98),
            ("2-2-3", 1): (1.22, 1.28),
            ("2-2-3", 8): (0.87, 0.93),
            ("2-2-3", 32): (0.82, 0.88),
        },
    )
    verdict = decide_rows(rows, [1, 8, 32])
    assert verdict.kind == KIND_SPECULATE_BELOW
    assert verdict.break_even_range is not None and not verdict.break_even_range.located
    assert "cannot locate" in verdict.reason
    assert "below about" not in verdict.reason
    data = json.loads(json.dumps(decide_rows(rows, [1, 8, 32]).to_json()))
    assert data["verdict"]["break_even_range"]["located"] is False
    assert data["verdict"]["break_even_range"]["high"] is None
    first = next(line for line in summary_lines(data) if line.startswith("verdict: "))
    assert first.startswith("verdict: speculate-below (break-even ") and "-8+ concurrent" in first


def test_the_report_shows_the_range_in_headline_sentence_and_plot() -> None:
    from specbench.report.verdict_plots import break_even_svg
    from specbench.report.verdict_section import break_even_text
    from specbench.report.verdict_views import break_even_view, verdict_screen

    rows = trial_rows(
        {"1-1-2": {1: 1.27, 8: 0.98, 32: 0.96}},
        ci={("1-1-2", 1): (1.24, 1.30), ("1-1-2", 8): (0.95, 1.01), ("1-1-2", 32): (0.93, 0.98)},
    )
    out = decide_rows(rows, [1, 8, 32])
    screen = verdict_screen(out)
    assert screen.headline.startswith("Speculate below about 5.6-8+ concurrent requests")
    assert screen.break_even_text == "5.6-8+"
    view = break_even_view(out)
    sentence, _ = break_even_text(out, view)
    assert sentence.startswith("Not located: from about 5.6 to 8 or more concurrent requests")
    assert "--concurrency 1,2,4,8,32" in sentence
    svg = break_even_svg(view)
    assert "break-even 5.6-8+ (not located by loads 1 and 8)" in svg
