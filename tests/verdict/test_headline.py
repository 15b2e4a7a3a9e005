"""The headline says what to launch, how sure, against what, at what cost (issue 22 item 6)."""

from __future__ import annotations

from typing import Any

from specbench.spec_config import SpecConfig
from tests.support.verdict_rows import decide_rows, trial_rows

NAMED = {"model card": SpecConfig(3, 4, 8), "SGLang automatic choice": SpecConfig(3, 1, 4)}


def _with_ttft(frame: Any, base_ms: float, spec_ms: float) -> Any:
    frame["ttft_ms_p50"] = [
        base_ms if key == "baseline" else spec_ms for key in frame["config_key"].astype(str)
    ]
    return frame


def test_when_the_automatic_choice_is_as_good_that_is_the_headline() -> None:
    rows = trial_rows(
        {"2-1-3": {1: 1.64, 8: 1.27}, "3-1-4": {1: 1.66, 8: 1.26}, "3-4-8": {1: 1.40, 8: 1.05}},
        ci={("2-1-3", 1): (1.57, 1.72), ("3-1-4", 1): (1.58, 1.75)},
    )
    d = decide_rows(_with_ttft(rows, 20.0, 26.0), [1, 8], defaults=NAMED)
    text = d.headline.text
    assert d.headline.tuning_buys_nothing and text.startswith("Tuning buys nothing")
    assert "3-1-4" in text and "within noise" in text
    assert "time to first token rises: 20 ms -> 26 ms p50 (+30%) at concurrency 1" in text


def test_a_tuned_pick_is_stated_against_the_defaults_with_its_interval() -> None:
    rows = trial_rows(
        {"2-1-3": {1: 1.64, 8: 1.27}, "3-1-4": {1: 1.30, 8: 1.05}, "3-4-8": {1: 1.02, 8: 0.61}},
        ci={("2-1-3", 1): (1.57, 1.72), ("3-4-8", 1): (0.97, 1.07)},
    )
    d = decide_rows(rows, [1, 8], defaults=NAMED)
    text = d.headline.text
    assert not d.headline.tuning_buys_nothing
    assert text.startswith("Launch 2-1-3 at every load tested")
    assert "1.64x [1.57-1.72] at concurrency 1 (95% interval)" in text
    assert "model card's 3-4-8 at 1.02x [0.97-1.07]" in text
    assert "SGLang automatic choice's 3-1-4 at 1.30x" in text
    assert "time to first token" in text
