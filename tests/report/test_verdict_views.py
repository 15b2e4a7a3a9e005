"""First-screen data and the verdict's plots (tooltips, unmeasured cells, model curve)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from specbench.report.verdict_plots import break_even_svg, heatmap_svg, latency_svg
from specbench.report.verdict_views import (
    acceptance_by_position,
    break_even_view,
    latency_view,
    verdict_screen,
)
from specbench.spec_config import SpecConfig
from tests.support.verdict_rows import HOST_STAGED, decide_rows, trial_rows


def _screen():  # type: ignore[no-untyped-def]
    named = {"model card": SpecConfig(3, 4, 8), "SGLang automatic choice": SpecConfig(5, 4, 8)}
    out = decide_rows(trial_rows(HOST_STAGED), [1, 8, 32], host_staged=True, defaults=named)
    return out, out.defaults, verdict_screen(out)


def test_first_screen_names_the_defaults_and_marks_losses() -> None:
    _, _, screen = _screen()
    assert screen.kind == "speculate-below"
    assert screen.headline.startswith("Speculate below about ")
    off = [row for row in screen.loads if row.config_key is None]
    assert [row.concurrency for row in off] == [8, 32]
    assert all("--speculative" not in row.launch for row in off)
    assert all(row.best_tree_speedup is not None and row.best_tree_speedup.loses for row in off)
    names = [row.name for row in screen.comparison]
    assert "model card (3-4-8)" in names and "SGLang automatic choice (5-4-8)" in names
    card = next(row for row in screen.comparison if row.config_key == "3-4-8")
    assert [cell is not None and cell.loses for cell in card.cells] == [True, True, True]
    assert card.cells[1] is not None and card.cells[1].text.startswith("0.55x [")


def test_break_even_plot_has_tooltips_and_labels_the_model_curve() -> None:
    out, _, _ = _screen()
    view = break_even_view(out, [(1, 1.2), (8, 0.9), (64, 0.7)])
    assert view.model_label is not None and "SIMULATED, not a measurement" in view.model_label
    svg = break_even_svg(view, simulated=True)
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert any("1-1-2 (mixed-load pick): 1.22x [" in t for t in titles)
    assert "break-even ~" in svg and "model prediction for 1-1-2" in svg


def test_heatmap_draws_unmeasured_cells_apart_from_one() -> None:
    svg = heatmap_svg(1, [1, 2], [1, 4], [[1.0, None], [1.2, 0.8]], [[2, None], [3, 5]])
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    assert "num_steps 1, topk 4: not tested" in titles
    assert "num_steps 1, topk 1: best 1.00x with num_draft_tokens 2" in titles
    assert 'id="heatmap-hatch' in svg or "pattern" in svg  # hatched, not white


def test_latency_view_and_plot() -> None:
    trials = pd.DataFrame(
        [
            {
                "config_key": k,
                "state": "complete",
                "concurrency": c,
                "ttft_ms_p50": 50.0 * c,
                "itl_ms_p50": i,
                "output_tokens_per_s": 100.0 * c,
            }
            for k, i in (("baseline", 20.0), ("3-4-8", 9.0))
            for c in (1, 8)
        ]
    )
    series = latency_view(trials, {"no speculation": None, "3-4-8": "3-4-8", "absent": "9-9-9"})
    assert [s.label for s in series] == ["no speculation", "3-4-8"]
    assert series[1].itl_ms_p50 == [9.0, 9.0]
    assert "ITL p50 9.0 ms at concurrency 8" in latency_svg(series)


def test_acceptance_by_position_from_accept_histograms() -> None:
    # H[n] = verify steps that accepted exactly n draft tokens.
    view = acceptance_by_position([[1, 2, 1], [0, 0, 4]], "3-4-8")
    assert view is not None
    assert view.positions == [1, 2]
    assert view.accept_rate == pytest.approx([7 / 8, 5 / 8])
    assert acceptance_by_position([[], []], "3-4-8") is None


def test_default_notes_say_when_the_card_loses_or_ties() -> None:
    _, _, screen = _screen()
    assert "The model card's 3-4-8 is slower than no speculation at concurrency 1, 8, 32." in (
        screen.default_notes
    )
    tie = {"3-4-8": {1: 1.80, 8: 1.30}, "4-4-7": {1: 1.82, 8: 1.31}}
    out = decide_rows(trial_rows(tie), [1, 8], defaults={"model card": SpecConfig(3, 4, 8)})
    notes = verdict_screen(out).default_notes
    assert notes == [
        "The model card's 3-4-8 is within noise of the per-load pick wherever speculation "
        "pays: tuning buys nothing measurable over it on this machine."
    ]
