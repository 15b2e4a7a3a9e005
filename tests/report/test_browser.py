"""The report in a real headless Chromium: loads from file://, no errors, plots render.

Driven over the DevTools protocol (aiohttp's websocket client) rather than by grepping
Chromium's log, so that uncaught exceptions, console errors, CSP violations, network
requests and alert() dialogs are all observed as events, and the sizes of the plots
are measured by the browser's own layout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from specbench.report.html import render_report
from tests.support.run_dirs import XSS, write_run

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists() and os.environ.get("SPECBENCH_REQUIRE_BROWSER") != "1",
        reason="Debian's chromium is not installed (CI sets SPECBENCH_REQUIRE_BROWSER=1)",
    ),
]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


class Cdp:
    """A minimal DevTools protocol client: numbered calls and an event log."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_arrived = asyncio.Event()
        self.tasks: list[asyncio.Future[dict[str, Any]]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
                if data.get("method") == "Page.javascriptDialogOpening":
                    # An alert() blocks the page; dismiss it (the test fails on the event).
                    self.tasks.append(
                        asyncio.ensure_future(
                            self.send("Page.handleJavaScriptDialog", accept=False)
                        )
                    )
                self.event_arrived.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_str(json.dumps({"id": self.next_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout=30)
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {method} within {timeout}s")
            self.event_arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.event_arrived.wait(), timeout=left)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Every error-level signal the page produced."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {})}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {params.get('type')} {params.get('message')!r}")
        return out

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]


@contextlib.asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Cdp]:
    """A headless Chromium in its own process group, killed (group) on exit."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                raise AssertionError(
                    f"chromium exited with {proc.returncode}: "
                    + (tmp_path / "chromium.log").read_text(errors="replace")[-2000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError("chromium did not open its DevTools port within 60 s")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                try:
                    for domain in ("Page", "Runtime", "Log", "Network"):
                        await cdp.send(f"{domain}.enable")
                    yield cdp
                finally:
                    cdp.reader.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


_INSPECT = """
(() => {
  const plots = Array.from(document.querySelectorAll('svg')).map(svg => {
    const r = svg.getBoundingClientRect();
    return {label: svg.getAttribute('aria-label') || '', width: r.width, height: r.height};
  });
  const imgs = Array.from(document.querySelectorAll('img')).map(
    img => ({src: img.src.slice(0, 40), width: img.naturalWidth, height: img.naturalHeight}));
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
  return {
    title: document.title,
    plots: plots,
    imgs: imgs,
    duplicate_ids: ids.filter((id, i) => ids.indexOf(id) !== i),
    sections: document.querySelectorAll('main > section').length,
    sim_badges: document.querySelectorAll('main > section h2 .badge.sim').length,
    scripts: document.querySelectorAll('script').length,
    headline: document.querySelector('.verdict-box .headline').textContent,
    failures: document.querySelectorAll('details.failure').length,
  };
})()
"""

_SORT = """
(async () => {
  const table = document.getElementById('trial-table');
  const headers = Array.from(table.tHead.rows[0].cells);
  const col = headers.findIndex(th => th.textContent.trim() === 'Speedup');
  const values = () => Array.from(table.tBodies[0].rows)
    .map(r => r.cells[col].getAttribute('data-sort'))
    .filter(v => v !== '').map(parseFloat);
  headers[col].click();
  const first = values();
  const firstSort = headers[col].getAttribute('aria-sort');
  headers[col].click();
  const second = values();
  const lastRowEmpty = table.tBodies[0].rows[table.tBodies[0].rows.length - 1]
    .cells[col].getAttribute('data-sort') === '';
  return {first, second, firstSort, secondSort: headers[col].getAttribute('aria-sort'), lastRowEmpty};
})()
"""


async def _inspect_report(report: Path, tmp_path: Path) -> tuple[dict[str, Any], Cdp, bytes]:
    async with chromium(tmp_path) as cdp:
        await cdp.send("Page.navigate", url=report.resolve().as_uri())
        await cdp.wait_for("Page.loadEventFired")
        facts = await cdp.evaluate(_INSPECT)
        facts["sort"] = await cdp.evaluate(_SORT)
        shot = await cdp.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.sleep(0.2)  # let late console events arrive
        return facts, cdp, base64.b64decode(shot["data"])


_LAYOUT = """
(() => {
  const vw = window.innerWidth;
  const doc = document.documentElement;
  // Elements that stick out of the viewport, outside any box that scrolls itself.
  const scrolls = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (['auto', 'scroll'].includes(s.overflowX) && p.scrollWidth > p.clientWidth) return true;
    }
    return false;
  };
  const wide = Array.from(document.querySelectorAll('main *, header *'))
    .filter(el => el.getBoundingClientRect().right > vw + 1 && !scrolls(el))
    .slice(0, 5).map(el => el.tagName + '.' + el.className + '#' + el.id);
  const cmd = document.getElementById('launch-command');
  const args = cmd ? Array.from(cmd.querySelectorAll('.arg')) : [];
  const splitArgs = args.filter(a => a.getClientRects().length > 1).map(a => a.textContent);
  const be = document.getElementById('break-even');
  return {
    viewport: vw, scrollWidth: doc.scrollWidth, wide: wide, splitArgs: splitArgs,
    breakEvenLines: be ? Math.round(be.getBoundingClientRect().height /
      parseFloat(getComputedStyle(be).lineHeight)) : 0,
    breakEvenWidth: be ? be.getBoundingClientRect().width : 0,
    kind: document.querySelector('.verdict-box').getAttribute('data-kind'),
    copyButtons: document.querySelectorAll('button.copy').length,
    launchLines: document.querySelectorAll('pre.cmd').length,
    titles: document.querySelectorAll('svg title').length,
  };
})()
"""

_INTERACT = """
(async () => {
  const input = document.getElementById('trial-filter');
  const rows = () => Array.from(document.getElementById('trial-table').tBodies[0].rows);
  const total = rows().length;
  input.value = 'baseline';
  input.dispatchEvent(new Event('input'));
  const shown = rows().filter(r => !r.hidden).length;
  input.value = '';
  input.dispatchEvent(new Event('input'));
  const button = document.querySelector('button.copy');
  button.click();
  await new Promise(r => setTimeout(r, 300));
  const red = Array.from(document.querySelectorAll('#trial-table td.nopay'))
    .map(td => parseFloat(td.textContent)).filter(v => !isNaN(v));
  return {total, shown, after: rows().filter(r => !r.hidden).length,
          copied: button.textContent, red};
})()
"""


async def _at_widths(report: Path, tmp_path: Path) -> tuple[dict[int, dict[str, Any]], Cdp]:
    """Layout facts at a desktop and a phone width, and a screenshot of each."""
    out: dict[int, dict[str, Any]] = {}
    shots = Path(os.environ.get("SPECBENCH_SCREENSHOT_DIR") or tmp_path)
    async with chromium(tmp_path) as cdp:
        for width, mobile in ((1400, False), (390, True)):
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=900 if not mobile else 844,
                deviceScaleFactor=1,
                mobile=mobile,
            )
            cdp.events = [e for e in cdp.events if e.get("method") != "Page.loadEventFired"]
            await cdp.send("Page.navigate", url=report.resolve().as_uri())
            await cdp.wait_for("Page.loadEventFired")
            out[width] = await cdp.evaluate(_LAYOUT)
            shot = await cdp.send("Page.captureScreenshot", format="png")
            (shots / f"{report.stem}-{width}.png").write_bytes(base64.b64decode(shot["data"]))
        out[0] = await cdp.evaluate(_INTERACT)
        await asyncio.sleep(0.2)
        return out, cdp


def test_report_loads_offline_without_errors_and_plots_render(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", scenario="crosses", failed=2, hostile_text=XSS)
    report = render_report(run)
    facts, cdp, png = asyncio.run(_inspect_report(report, tmp_path))

    assert cdp.problems() == []
    # Nothing but the file itself was requested: no CDN, no fonts, no network.
    assert all(u.startswith(("file://", "data:")) for u in cdp.requested_urls()), (
        cdp.requested_urls()
    )
    assert facts["title"].startswith("specbench report: minimax-m2.7")
    # break-even, step time, latency, throughput-latency, all-reduce, heatmap, tau,
    # speedup, domains, history (no model check: the run is SIMULATED)
    labels = [p["label"] for p in facts["plots"]]
    assert labels == [
        "break-even",
        "step-time",
        "latency",
        "tput-latency",
        "allreduce",
        "heatmap",
        "tau-ndt",
        "speedup-conc",
        "tau-domain",
        "history",
    ]
    for plot in facts["plots"]:
        assert plot["width"] > 50 and plot["height"] > 50, plot
    for img in facts["imgs"]:
        assert img["width"] > 0 and img["height"] > 0, img
    assert facts["duplicate_ids"] == []
    # verdict, adaptive speculation (the exported configs), why, latency, hardware, plots,
    # trials, failed trials, run: each stamped SIMULATED
    assert facts["sim_badges"] == facts["sections"] == 9
    assert facts["scripts"] == 1  # the hostile <script> stayed text
    assert facts["failures"] == 2
    assert facts["headline"].startswith("Speculate below about")

    sort = facts["sort"]
    assert sort["firstSort"] == "ascending" and sort["first"] == sorted(sort["first"])
    assert sort["secondSort"] == "descending"
    assert sort["second"] == sorted(sort["second"], reverse=True)
    assert sort["lastRowEmpty"]  # rows without a speedup (baseline, failed) sort last

    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    (tmp_path / "report.png").write_bytes(png)


def test_never_pays_report_in_browser(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", scenario="never-pays", hardware_class="host-staged", failed=0)
    report = render_report(run)
    facts, cdp, png = asyncio.run(_inspect_report(report, tmp_path))
    assert cdp.problems() == []
    assert facts["headline"].strip() == "Turn speculation OFF"
    assert all(p["width"] > 50 and p["height"] > 50 for p in facts["plots"])
    assert len(png) > 20_000


def test_chromium_screenshot_flag_of_a_single_trial_report(tmp_path: Path) -> None:
    """The plain --screenshot path CI users run by hand also works on a report."""
    run = write_run(tmp_path / "run", num_configs=1, concurrencies=(1,), failed=0)
    report = render_report(run)
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [
            str(CHROMIUM),
            *[f for f in CHROMIUM_FLAGS if not f.startswith("--remote-debugging")],
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        start_new_session=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    assert b"Uncaught" not in proc.stderr


@pytest.mark.parametrize("scenario", ["crosses", "never-pays"])
def test_report_fits_a_phone_and_a_desktop(tmp_path: Path, scenario: str) -> None:
    """1400 px and 390 px: nothing wider than the screen, launch flags never split, the
    break-even sentence readable, copy and filter work without console errors."""
    hw = "nvlink" if scenario == "crosses" else "host-staged"
    run = write_run(tmp_path / "run", scenario=scenario, hardware_class=hw, failed=1)
    report = render_report(run)
    facts, cdp = asyncio.run(_at_widths(report, tmp_path))
    assert cdp.problems() == []
    for width in (1400, 390):
        layout = facts[width]
        assert layout["viewport"] == width
        assert layout["scrollWidth"] <= width, layout
        assert layout["wide"] == [], layout
        assert layout["splitArgs"] == [], layout  # no flag broken across lines
        assert layout["copyButtons"] == layout["launchLines"] >= 2
        assert layout["titles"] > 0  # plots carry tooltips
    # At 390 px the break-even sentence keeps a readable measure (not a word per line).
    assert facts[390]["breakEvenWidth"] > 300
    assert facts[390]["kind"] == ("speculate-below" if scenario == "crosses" else "off")
    interact = facts[0]
    assert 0 < interact["shown"] < interact["total"] == interact["after"]
    assert interact["copied"] in ("Copied", "Selected")
    assert interact["red"] and all(v < 1.0 for v in interact["red"])
