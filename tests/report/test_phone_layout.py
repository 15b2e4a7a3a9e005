"""The report and the comparison at 390 px (a phone) and 1400 px, measured in Chromium.

Issue 22 item 11, each found by looking at screenshots of main: the trial table hid
speedup and tau behind a sideways scroll, the comparison hid the second run's column,
plot text was ~5 px, the heatmap title was cut at both widths, the SIMULATED stamp sat
on the legends and the hardware table showed raw keys (``allreduce_alpha_us``).
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import pytest

from specbench.report.html import render_report
from specbench.report.side_by_side import render_side_by_side
from tests.report.test_browser import CHROMIUM, chromium
from tests.support.run_dirs import write_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and os.environ.get("SPECBENCH_REQUIRE_BROWSER") != "1",
        reason="Debian's chromium is not installed (CI sets SPECBENCH_REQUIRE_BROWSER=1)",
    ),
]

_MEASURE = """
(() => {
  const vw = document.documentElement.clientWidth;
  const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1
    && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  const overlaps = (a, b) => a.left < b.right && b.left < a.right
    && a.top < b.bottom && b.top < a.bottom;
  const out = {viewport: vw, plots: {}, rawKeys: [], trialHeaders: {}, runCells: []};
  for (const svg of document.querySelectorAll('svg.plot')) {
    const box = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll('text'));
    // The scale of each text's CTM (rotated labels included): its on-screen size in px.
    const px = texts.filter(t => t.textContent.trim()).map(t => {
      const m = t.getScreenCTM();
      return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    });
    const legends = Array.from(svg.querySelectorAll('g[id*="legend"]'))
      .map(g => g.getBoundingClientRect());
    const stamp = texts.find(t => t.textContent.trim() === 'SIMULATED');
    const title = texts.find(t => t.textContent.startsWith('Best speedup at concurrency'));
    out.plots[svg.getAttribute('aria-label')] = {
      minTextPx: px.length ? Math.min(...px) : null,
      stampOnLegend: stamp ? legends.some(l => overlaps(stamp.getBoundingClientRect(), l))
        : null,
      titleInside: title ? inside(title.getBoundingClientRect(), box) : null,
    };
  }
  for (const dt of document.querySelectorAll('#hardware dt')) {
    if (/^[a-z0-9]+(_[a-z0-9]+)+$/.test(dt.textContent.trim())) out.rawKeys.push(dt.textContent);
  }
  const table = document.getElementById('trial-table');
  if (table) {
    const wrap = table.closest('.table-wrap').getBoundingClientRect();
    for (const th of table.tHead.rows[0].cells) {
      const r = th.getBoundingClientRect();
      out.trialHeaders[th.textContent.trim()] = r.right <= Math.min(wrap.right, vw) + 1;
    }
  }
  for (const td of document.querySelectorAll('#side-by-side td[data-label]')) {
    const r = td.getBoundingClientRect();
    if (td.dataset.label !== 'Concurrency') out.runCells.push(r.right <= vw + 1 && r.width > 0);
  }
  return out;
})()
"""


async def _measure(pages: list[Path], tmp_path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    shots = Path(os.environ.get("SPECBENCH_SCREENSHOT_DIR") or tmp_path)
    async with chromium(tmp_path) as cdp:
        for width, mobile in ((1400, False), (390, True)):
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=844 if mobile else 900,
                deviceScaleFactor=1,
                mobile=mobile,
            )
            for page in pages:
                cdp.events = [e for e in cdp.events if e.get("method") != "Page.loadEventFired"]
                await cdp.send("Page.navigate", url=page.resolve().as_uri())
                await cdp.wait_for("Page.loadEventFired")
                out[(page.stem, width)] = await cdp.evaluate(_MEASURE)
                shot = await cdp.send("Page.captureScreenshot", format="png")
                (shots / f"{page.stem}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
        assert cdp.problems() == []
    return out


def test_phone_and_desktop_layout(tmp_path: Path) -> None:
    first = write_run(tmp_path / "a", scenario="crosses", failed=0)
    second = write_run(tmp_path / "b", scenario="crosses", failed=0, seed=1)
    report = render_report(first)
    comparison = render_side_by_side([first, second], tmp_path / "comparison.html")
    facts = asyncio.run(_measure([report, comparison], tmp_path))
    for width in (1400, 390):
        page = facts[("report", width)]
        assert page["rawKeys"] == [], page["rawKeys"]
        heat = page["plots"]["heatmap"]
        assert heat["titleInside"] is True, (width, heat)
        for name, plot in page["plots"].items():
            assert plot["stampOnLegend"] is not True, (width, name)
        headers = page["trialHeaders"]
        for column in ("Config", "Speedup", "tau", "Conc."):
            assert headers[column], (width, column, headers)
        cells = facts[("comparison", width)]["runCells"]
        assert cells and all(cells), (width, cells)
    phone = facts[("report", 390)]["plots"]
    small = {name: round(p["minTextPx"], 1) for name, p in phone.items() if p["minTextPx"] < 9.0}
    assert small == {}, small
