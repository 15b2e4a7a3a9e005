"""The request-rate section of the report: the SLO-rate headline on the first screen,
the picks per rate and the four figures, in HTML and Markdown; absent without rates."""

from __future__ import annotations

from pathlib import Path

from specbench.cli.sweep_summary import rate_lines
from specbench.report.html import render_report
from specbench.schema import read_json
from specbench.spec_config import SpecConfig
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options


def _sweep(out: Path, **overrides: object) -> None:
    values: dict[str, object] = {
        "strategy": "fixed",
        "configs": (SpecConfig(2, 1, 3),),
        "concurrencies": (1,),
        **overrides,
    }
    run_sweep(fast_options(out, **values))


def test_the_rate_headline_comes_before_the_verdict(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _sweep(out, load="rate:1,4", slo="tpot_p99_ms=1000")
    html = render_report(out).read_text()
    rates = read_json(out / "results.json")["rates"]
    assert rates["headline"] in html
    assert html.index('id="rates"') < html.index('id="verdict"')
    for name in ("tpot", "ttft", "goodput", "frontier"):
        assert f'id="fig-rate-{name}"' in html
    assert "SLO p99 1000 ms" in html  # the objective is drawn on the TPOT figure
    markdown = render_report(out, tmp_path / "r.md", fmt="md").read_text()
    assert "## Request-rate loads" in markdown and rates["headline"] in markdown
    lines = rate_lines(rates)
    assert lines[0] == f"rates: {rates['headline']}"
    assert [line.split(":")[0].strip() for line in lines[1:3]] == ["at 1 req/s", "at 4 req/s"]


def test_a_run_without_rates_has_no_rate_section(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _sweep(out)
    assert 'id="rates"' not in render_report(out).read_text()
    assert rate_lines(read_json(out / "results.json").get("rates")) == []
