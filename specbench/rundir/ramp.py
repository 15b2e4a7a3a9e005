"""ramp.json: the candidates measured over a changing load, and the answer they give.

Written by the sweep after the search (``specbench.sweeps.ramp``), read by the report.
Each candidate (no speculation, the best static configuration, the engine's default
adaptive config, the one specbench wrote) carries its output tokens/s over the whole
ramp, its speedup against no speculation with a 95% interval over the repeats, and its
per-phase numbers; ``written_versus`` holds the written config's ratio against the
static pick and against the engine's default, as [mean, low, high].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from specbench.schema import read_json

RAMP_FILE = "ramp.json"
RAMP_KIND = "specbench.ramp"


def _change(ratio: Sequence[float], than: str) -> str:
    """ "gives 4.1% more output tokens/s (95% CI +2.0% to +6.3%) than ...", "fewer", or
    "gives no more ... than ... (-0.1%, 95% CI ...: within noise)" when the interval
    holds 0."""
    mean, low, high = (100.0 * (r - 1.0) for r in ratio)
    interval = f"95% CI {low:+.1f}% to {high:+.1f}%"
    if low > 0:
        return f"gives {mean:.1f}% more output tokens/s ({interval}) than {than}"
    if high < 0:
        return f"gives {-mean:.1f}% fewer output tokens/s ({interval}) than {than}"
    return f"gives no more output tokens/s than {than} ({mean:+.1f}%, {interval}: within noise)"


def ramp_answer(body: Mapping[str, Any]) -> str:
    """The sentence the report and the console lead with."""
    mark = "SIMULATED: " if body.get("simulated") else ""
    traffic = "-".join(str(c) for c in body.get("phases", []))
    by_role = {c["role"]: c for c in body.get("candidates", [])}
    versus = body.get("written_versus") or {}
    static = by_role.get("static")
    if "written" not in by_role:
        best = max(body.get("candidates", []), key=lambda c: c["output_tokens_per_s"], default=None)
        label = best["label"] if best else "nothing"
        return f"{mark}over the ramp {traffic}, {label} gives the most output tokens/s"
    parts = []
    if "static" in versus and static is not None:
        than = f"the best static configuration {static['config']}"
        parts.append(_change(versus["static"], than))
    if "engine-default" in versus:
        parts.append(_change(versus["engine-default"], "the engine's default adaptive config"))
    if not parts:
        return f"{mark}over the ramp {traffic}, the written adaptive config was measured alone"
    return f"{mark}over the ramp {traffic}, the written adaptive config " + ", and ".join(parts)


def read_ramp(run_dir: Path) -> dict[str, Any] | None:
    """The run's ramp.json, or None when the sweep measured no ramp."""
    path = Path(run_dir) / RAMP_FILE
    if not path.exists():
        return None
    return read_json(path, kind="ramp")


__all__ = ["RAMP_FILE", "RAMP_KIND", "ramp_answer", "read_ramp"]
