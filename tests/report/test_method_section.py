"""The methods side by side: each method's best settings per load, in HTML and Markdown,
the winner named per load, measured-only methods labelled; absent with one method."""

from __future__ import annotations

import json
from pathlib import Path

from specbench.report.html import render_report
from specbench.report.method_section import build_method_view
from specbench.spec_config import SpecConfig
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options


def _with_ngram_rows(out: Path) -> None:
    """results.json as a run that also measured ngram (the simulator models none)."""
    path = out / "results.json"
    results = json.loads(path.read_text())
    extra = []
    for row in results["trials"]:
        if row["config_key"] == "baseline":
            continue
        row["method"] = "eagle3"
        twin = dict(row, method="ngram", config_key="ngram-2-1-3", speedup=row["speedup"] * 2)
        twin.update(speedup_ci_low=None, speedup_ci_high=None, predicted_tau=None)
        extra.append(twin)
    results["trials"] += extra
    results["losslessness"]["by_method"] = {
        "eagle3": {"checked": 4, "matched": 4, "passed": True},
        "ngram": {"checked": 4, "matched": 3, "passed": False},
    }
    path.write_text(json.dumps(results))


def test_methods_are_compared_per_load(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(fast_options(out, strategy="fixed", configs=(SpecConfig(2, 1, 3),),
                           concurrencies=(1, 4)))  # fmt: skip
    assert build_method_view(json.loads((out / "results.json").read_text())) is None
    assert 'id="methods"' not in render_report(out).read_text()
    _with_ngram_rows(out)
    view = build_method_view(json.loads((out / "results.json").read_text()))
    assert view is not None
    assert [(r.load, r.method) for r in view.rows] == [
        (1, "ngram"), (1, "eagle3"), (4, "ngram"), (4, "eagle3"),
    ]  # fmt: skip
    assert view.headlines[0].startswith("At concurrency 1: ngram (ngram-2-1-3)")
    assert [r.measured_only for r in view.rows[:2]] == [True, False]
    assert view.rows[0].lossless == "3/4"
    html = render_report(out).read_text()
    assert 'id="methods"' in html and "measured only" in html
    assert html.index('id="methods"') < html.index('id="verdict"')
    markdown = render_report(out, tmp_path / "r.md", fmt="md").read_text()
    assert "## Methods side by side" in markdown and "| 1 | ngram | ngram-2-1-3 |" in markdown
