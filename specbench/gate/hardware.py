"""Were the two runs taken on the same hardware?

A gate answers "did this change (a draft checkpoint, an engine release, a driver) make
things worse on our machine". Between an H200 NVLink run and an L40S host-staged run
every metric differs for reasons no change caused, so such a pair is refused as not
comparable, as differing workloads are, unless ``--force`` asks for the numbers anyway.

A run's hardware is its GPU model, interconnect class and tensor-parallel size: what
prices a decode step. The profile's name is only shown, never compared, because a probe
file's name (``probe:my-probe.json``) says nothing about the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The fields that identify the hardware, with the words a user reads for each.
IDENTITY_FIELDS: tuple[tuple[str, str], ...] = (
    ("gpu", "GPU"),
    ("interconnect_class", "interconnect"),
    ("tp", "TP"),
)
_UNKNOWN = ("", "unknown", "none")


def _known(value: Any) -> bool:
    return value is not None and str(value).strip().lower() not in _UNKNOWN


def hardware_differences(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """``"GPU: 'A' != 'B'"`` for each identity field both sides know and that differs.

    A side that does not know a field (an endpoint run names no GPU) is not a difference:
    the gate cannot tell, and refusing would make attach-mode runs ungateable.
    """
    out = []
    for name, label in IDENTITY_FIELDS:
        a, b = baseline.get(name), candidate.get(name)
        if _known(a) and _known(b) and str(a) != str(b):
            out.append(f"{label}: {a!s} != {b!s}")
    return out


def describe_hardware(hardware: Mapping[str, Any]) -> str:
    """``h200-nvlink (NVIDIA H200 SXM 141GB, nvlink, TP 4)``, from what the run knows."""
    parts = [str(hardware[f]) for f in ("gpu", "interconnect_class") if _known(hardware.get(f))]
    if _known(hardware.get("tp")):
        parts.append(f"TP {hardware['tp']}")
    name = str(hardware.get("name") or "").strip()
    name = name if _known(name) else "unknown hardware"
    return f"{name} ({', '.join(parts)})" if parts else name


__all__ = ["IDENTITY_FIELDS", "describe_hardware", "hardware_differences"]
