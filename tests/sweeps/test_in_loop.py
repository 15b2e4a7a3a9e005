"""Calibration in the loop inside a sweep: the refit proposes, and the sweep stops settled.

The in-process simulator with a perturbed truth (SIMULATED) stands in for a launched
server; --stop-when-settled is on by default only when launching, so it is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

from specbench.sweeps.in_loop import SOURCE_REFIT
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options


def test_a_settled_sweep_stops_before_its_trials_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = fast_options(
        out,
        backend="sim",
        trials=40,
        seed=3,
        space="steps=2..4,topk=1|2|4",
        sim_perturbation=1.0,
        stop_when_settled=True,
    )
    outcome = run_sweep(options)
    settled = [n for n in outcome.notes if n.startswith("settled after")]
    assert settled, outcome.notes
    assert outcome.measured_total < 40
    results = json.loads((out / "results.json").read_text())
    assert results["study"]["settled"] == settled[0]
    sources = set(outcome.trials["source"])
    assert SOURCE_REFIT in sources, sources


def test_off_it_measures_every_trial(tmp_path: Path) -> None:
    options = fast_options(
        tmp_path / "run",
        backend="sim",
        trials=8,
        seed=3,
        space="steps=2..4,topk=1|2|4",
        stop_when_settled=False,
    )
    outcome = run_sweep(options)
    assert outcome.measured_total == 8
    assert not any(n.startswith("settled after") for n in outcome.notes)
