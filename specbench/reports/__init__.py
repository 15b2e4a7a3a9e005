"""Reports of a run directory: the verdict, the HTML/Markdown report (and the gate).

Only the verdict is imported eagerly: it is pure pandas and the sweep needs it, while
the renderer pulls in matplotlib and jinja2, which `specbench gate` in a CI job should
not pay for.
"""

from __future__ import annotations

from pathlib import Path

from specbench.reports.verdict import NOISE_MARGIN, Verdict, compute_verdict


def render_report(run_dir: Path, output: Path | None = None, *, fmt: str = "html") -> Path:
    """Render the report of ``run_dir`` (see specbench.reports.html.render_report)."""
    from specbench.reports.html import render_report as _render

    return _render(run_dir, output, fmt=fmt)


__all__ = ["NOISE_MARGIN", "Verdict", "compute_verdict", "render_report"]
