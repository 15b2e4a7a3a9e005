"""One answer on every surface, and it runs (issue 22 items 1, 2, 4 and 6).

Each test runs the CLI as a user would and reads the console, results.json, the HTML
report and the Markdown summary: the decision is made once by the sweep, so every
surface must name the same configuration and launch line.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from specbench.report.data import report_data
from specbench.report.markdown import render_markdown
from specbench.rundir.layout import RunDirectory
from tests.support.sweeps import run_cli

SMALL = ["--num-prompts", "4", "--max-new-tokens", "24", "--concurrency", "1,8", "--trials", "8"]


def _verdict_section(html: str) -> str:
    start = html.index('<section id="verdict">')
    return html[start : html.index("</section>", start)]


def test_a_run_that_does_not_fit_recommends_no_launch_and_its_advice_runs(
    tmp_path: Path,
) -> None:
    # MiniMax-M2.7 at TP 4 on L40S: 53.5 GiB of weights per GPU against ~42 GiB usable.
    out = tmp_path / "l40s"
    args = ["sweep", "--target", "minimax-m2.7", "--hardware", "l40s-pcie-host-staged"]
    result = run_cli([*args, *SMALL, "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Does not fit" in result.stdout and "--tp 8" in result.stdout
    assert "--tp-size 4 --speculative" not in result.stdout  # no launch line that cannot start
    results = RunDirectory(out).read_results()
    assert results["verdict"]["kind"] == "does-not-fit"
    assert results["recommendations"] == [] and results["best"] is None
    advice = results["verdict"]["launch"]
    assert advice.startswith("specbench sweep ") and advice.endswith("--tp 8")
    html = _verdict_section((out / "report.html").read_text(encoding="utf-8"))
    assert "Does not fit" in html and "--tp-size 4 --speculative" not in html
    assert 'data-copy="python -m sglang' not in html
    markdown = render_markdown(report_data(out))
    assert "Does not fit" in markdown and "--tp-size 4 --speculative" not in markdown
    # Nor does export write an adaptive config and a launch line for it.
    for engine in ("sglang", "vllm"):
        exported = run_cli(["export", str(out), "--engine", engine], cwd=tmp_path)
        assert exported.returncode == 2 and "does not fit" in exported.stderr, exported.stderr
        assert "--tp-size 4" not in exported.stdout + exported.stderr
    assert not list(out.glob("adaptive-*.json"))
    # The advice runs as printed (it exited 2 unless --backend sim was added).
    rerun = shlex.split(advice)[1:]
    again = run_cli([*rerun, *SMALL[:4], "--trials", "4"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "--tp-size 8" in again.stdout


def test_every_surface_names_the_one_pick(tmp_path: Path) -> None:
    out = tmp_path / "h200"
    args = ["sweep", "--target", "minimax-m2.7", "--hardware", "h200-nvlink", "--seed", "0"]
    result = run_cli([*args, *SMALL, "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = RunDirectory(out).read_results()
    pick = results["verdict"]["config"]["key"]
    # The console's top table leads with the pick and marks it.
    first_row = next(line for line in result.stdout.splitlines() if re.match(r"│ 1 │", line))
    assert f" {pick} " in first_row and "pick" in first_row
    # Every load the decision speculates at names the pick (one server, one tree).
    on = [r for r in results["recommendations"] if r["config"] is not None]
    assert on and all(r["config"]["key"] == pick for r in on)
    assert results["best"]["config_key"] == pick
    # The headline is the first line of the decision on the console and in the report.
    headline = results["verdict"]["headline"]
    assert headline in result.stdout
    data = report_data(out)
    assert data.verdict.config_key == pick and data.top[0].config_key == pick
    html = _verdict_section((out / "report.html").read_text(encoding="utf-8"))
    assert "time to first token" in headline and "95% interval" in headline
    assert f'data-copy="{results["verdict"]["launch"]}"' in html
    assert pick in render_markdown(data).split("Launch lines:")[0]
