"""The rendered HTML and Markdown, and the `specbench report` command."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest

from specbench.cli import main
from specbench.errors import BadInputError
from specbench.report.data import report_data
from specbench.report.html import render_report
from specbench.report.markdown import md_text, render_markdown
from specbench.report.plots import to_svg
from specbench.spec_config import SpecConfig
from tests.support.run_dirs import XSS, write_run

ESCAPED_XSS = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _sections(html: str) -> list[str]:
    return re.findall(r"<section id=\"[^\"]+\">.*?</section>", html, flags=re.DOTALL)


def test_html_report_with_failed_trials(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", scenario="crosses", failed=3)
    path = render_report(run)
    assert path == run / "report.html"
    html = path.read_text(encoding="utf-8")
    data = report_data(run)
    v = data.verdict
    assert v.status == "crosses" and v.config_key is not None
    # Verdict first: the verdict section precedes every other section.
    sections = _sections(html)
    assert sections[0].startswith('<section id="verdict">')
    verdict_html = sections[0]
    assert 'data-kind="speculate-below"' in verdict_html
    assert "Speculate below about" in verdict_html
    assert v.launch_command is not None
    assert f'data-copy="{v.launch_command}"' in verdict_html  # copyable, exactly
    assert "--speculative-algorithm EAGLE3" in v.launch_command
    assert "--speculative-num-draft-tokens" in v.launch_command
    assert "interpolated (linear in log load)" in verdict_html
    for load in data.verdict_section.screen.loads:
        shown = load.speedup or load.best_tree_speedup
        assert shown is not None and f"{shown.speedup:.2f}x" in verdict_html
    # The loads that do not pay carry a launch line without speculative flags.
    off = [load for load in data.verdict_section.screen.loads if load.config_key is None]
    assert off and all("--speculative" not in load.launch for load in off)
    assert all(f'data-copy="{load.launch}"' in verdict_html for load in off)
    # Failed trials with their reasons and log tails in <details>.
    assert html.count('<details class="failure">') == 3
    assert "server exited with code 1 during start-up" in html
    assert "CUDA out of memory" in html
    # SIMULATED on every section.
    assert all("badge sim" in s for s in sections)
    assert [re.match(r'<section id="([^"]+)"', x).group(1) for x in sections] == [  # type: ignore[union-attr]
        "verdict",
        "adaptive",
        "why",
        "latency",
        "hardware",
        "plots",
        "trials",
        "failed",
        "run",
    ]
    # Self-contained: nothing to fetch.
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html and "url(http" not in html
    assert "default-src 'none'" in unescape(html)


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", hostile_text=XSS, failed=1)
    html = render_report(run).read_text(encoding="utf-8")
    assert XSS not in html
    assert ESCAPED_XSS in html  # error, log tail and probe evidence show as text
    assert html.count("<script") == 1  # only the report's own sort script
    md = render_report(run, fmt="md").read_text(encoding="utf-8")
    assert "<script>" not in md


def test_single_trial_run(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "run",
        configs=[SpecConfig(3, 4, 8)],
        concurrencies=(1,),
        failed=0,
        predicted=False,
    )
    data = report_data(run)
    assert data.verdict.status == "pays-everywhere-measured"
    assert data.verdict.config_key == "3-4-8"
    assert data.verdict.break_even is None
    html = render_report(run).read_text(encoding="utf-8")
    assert "the break-even lies above it" in html
    assert 'id="failed"' not in html
    assert 'id="fig-prediction"' not in html  # no model predictions: no plot
    assert 'id="fig-heatmap"' in html


def test_never_pays_run_says_off(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", scenario="never-pays", hardware_class="host-staged")
    data = report_data(run)
    assert data.verdict.status == "never-pays"
    assert data.verdict.recommended is False
    assert data.verdict.decision.config is None
    html = render_report(run).read_text(encoding="utf-8")
    verdict_html = _sections(html)[0]
    assert "Turn speculation OFF" in verdict_html
    assert "staged through host memory" in verdict_html
    assert "Launch without speculation:" in verdict_html
    assert "--speculative" not in data.verdict_section.screen.launch
    assert "(recommended)" not in html  # no plot legend recommends a losing tree
    md = render_markdown(data)
    assert "**Turn speculation OFF**" in md
    assert "**no speculation**" in md


def test_real_run_has_no_simulated_badges(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", simulated=False)
    html = render_report(run).read_text(encoding="utf-8")
    assert "badge sim" not in html
    assert "SIMULATED run" not in html
    # The model's predictions are always labelled, even in a real run.
    assert "predicted speedup (model, SIMULATED)" in html
    assert "SIMULATED" not in render_markdown(report_data(run))


def test_svg_ids_are_unique_and_files_small(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", num_configs=40)
    html = render_report(run).read_text(encoding="utf-8")
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r"url\(#([^)]+)\)", html):
        assert ref in ids
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "<image" not in html  # nothing rasterised
    assert len(html.encode()) < 1_500_000


def test_to_svg_prefixes_every_reference() -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2], [3, 4])
    svg = to_svg(fig, "pfx", simulated=True)
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("pfx-") for i in ids)
    assert all(r.startswith("pfx-") for r in re.findall(r"url\(#([^)]+)\)", svg))
    assert "SIMULATED" in svg
    assert svg.startswith("<svg")


def test_markdown_summary(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", num_configs=8)
    out = render_report(run, fmt="md")
    assert out == run / "report.md"
    md = out.read_text(encoding="utf-8")
    data = report_data(run)
    assert md.startswith("## specbench: minimax-m2.7 (SIMULATED)")
    assert "> **SIMULATED**" in md
    assert data.verdict.launch_command is not None
    assert "\n" + data.verdict.launch_command + "\n" in md  # in the ```sh block
    lines = md.splitlines()
    top = lines.index("| # | Config | tau | speedup @1 | speedup @8 | speedup @32 |")
    table = [line for line in lines[top:] if line.startswith("| ")]
    assert len(table) == 1 + 5  # header + top 5
    loads = lines.index(
        "| Concurrency | Launch | Speedup [95% interval] | Equivalent within noise |"
    )
    assert lines[loads + 2].startswith("| 1 | ")
    assert "model card (3-4-8)" in md
    assert f"`{data.top[0].config_key}`" in table[1]
    assert md_text("a|b<c>") == "a\\|b&lt;c&gt;"


def test_bad_format_and_output_dir(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    with pytest.raises(BadInputError, match="unknown report format"):
        render_report(run, fmt="pdf")
    with pytest.raises(BadInputError, match="is a directory"):
        render_report(run, tmp_path)


def test_cli_report_default_and_custom_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path / "run", failed=1)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run)])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == str(run / "report.html")
    assert (run / "report.html").stat().st_size > 10_000

    out = tmp_path / "summary.md"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run), "-o", str(out), "--format", "md"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith("## specbench:")


def test_cli_report_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "missing")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("specbench: error: ")
    assert "Traceback" not in err

    run = write_run(tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["target"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "'target'" in err and err.count("\n") == 1

    with pytest.raises(SystemExit) as exc:
        main(["report", str(write_run(tmp_path / "run2")), "--format", "pdf"])
    assert exc.value.code == 2


def test_a_plot_that_cannot_be_drawn_costs_only_that_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specbench.report import verdict_plots

    def broken(*args: object, **kwargs: object) -> str:
        raise ValueError("degenerate range")

    monkeypatch.setattr(verdict_plots, "heatmap_svg", broken)
    html = render_report(write_run(tmp_path / "run")).read_text(encoding="utf-8")
    assert 'id="fig-heatmap"' not in html
    assert 'id="fig-history"' in html
    assert "The heatmap plot could not be drawn: ValueError: degenerate range" in html


def test_run_without_baseline_is_undecided(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", with_baseline=False)
    data = report_data(run)
    assert data.verdict.status == "unknown" and not data.verdict.recommended
    verdict_html = _sections(render_report(run).read_text(encoding="utf-8"))[0]
    assert "No verdict yet: no speedup could be computed" in verdict_html
    assert "nan" not in verdict_html.lower().replace("nano", "")
    assert "No verdict yet" in render_markdown(data)


def test_run_that_crashed_before_any_trial(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    results = json.loads((run / "results.json").read_text())
    results["trials"], results["best"] = [], None
    del results["decision"]  # a run that crashed before any trial stored no decision
    (run / "results.json").write_text(json.dumps(results))
    (run / "requests.jsonl").unlink()
    data = report_data(run)
    assert data.verdict.decision.config is None and data.verdict.status == "unknown"
    html = render_report(run).read_text(encoding="utf-8")
    assert "No verdict yet: no speedup could be computed" in html
    assert "requests.jsonl is missing" in html
    # The probe's all-reduce curve, and the model's step time of the hardware (SIMULATED).
    assert html.count("<svg") == 2 and 'id="fig-step-time"' in html
    assert "No verdict yet" in render_markdown(data)
