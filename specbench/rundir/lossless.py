"""The losslessness check: at temperature 0, speculation must not change the output.

Speculative decoding with greedy verification is exact: every configuration must
produce, for every prompt, the same text as the baseline (Leviathan et al. 2023,
"Fast Inference from Transformers via Speculative Decoding"). Each request record keeps
a hash and the first characters of its output; here every speculative record is
compared with the baseline record of the same prompt at the same concurrency (batch
composition can move floating-point results, so only like is compared with like). A
mismatch is reported with the first divergence, never hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from specbench.rundir.records import RequestRecord
from specbench.spec_config import BASELINE_KEY


def _first_difference(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def losslessness(
    records: Iterable[RequestRecord], methods: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """How many speculative outputs equal the baseline's, and the first divergence.

    ``checked`` is 0 when there is nothing to compare (no baseline, or records without
    output hashes); ``passed`` is None then, not True. With ``methods`` (configuration
    key -> speculative method) the counts are summed per method too (``by_method``):
    each method is checked on its own, so one lossless method cannot hide another.
    """
    baseline: dict[tuple[str, int], RequestRecord] = {}
    speculative: list[RequestRecord] = []
    for record in records:
        if not record.ok or record.output_sha256 is None:
            continue
        if record.config_key == BASELINE_KEY:
            baseline.setdefault((record.prompt_id, record.concurrency), record)
        else:
            speculative.append(record)
    checked = matched = 0
    by_config: dict[str, dict[str, int]] = {}
    first: dict[str, Any] | None = None
    for record in speculative:
        base = baseline.get((record.prompt_id, record.concurrency))
        if base is None:
            continue
        checked += 1
        counts = by_config.setdefault(record.config_key, {"checked": 0, "matched": 0})
        counts["checked"] += 1
        if base.output_sha256 == record.output_sha256:
            matched += 1
            counts["matched"] += 1
        elif first is None:
            head_b, head_s = base.output_head or "", record.output_head or ""
            first = {
                "config_key": record.config_key,
                "prompt_id": record.prompt_id,
                "concurrency": record.concurrency,
                "char_index": _first_difference(head_b, head_s),
                "baseline_head": head_b,
                "speculative_head": head_s,
            }
    by_method: dict[str, dict[str, Any]] = {}
    for key, counts in by_config.items():
        name = (methods or {}).get(key)
        if name is None:
            continue
        total = by_method.setdefault(name, {"checked": 0, "matched": 0})
        total["checked"] += counts["checked"]
        total["matched"] += counts["matched"]
    for total in by_method.values():
        total["passed"] = total["matched"] == total["checked"]
    return {
        "checked": checked,
        "matched": matched,
        "mismatched": checked - matched,
        "passed": None if checked == 0 else matched == checked,
        "by_config": by_config,
        "by_method": by_method,
        "first_divergence": first,
    }


def describe_losslessness(summary: dict[str, Any]) -> str:
    """One line for the report and the console."""
    checked = summary.get("checked") or 0
    if not checked:
        return "losslessness: not checked (no baseline output to compare with)"
    matched = summary.get("matched") or 0
    if matched == checked:
        return f"losslessness: {matched}/{checked} speculative outputs equal the baseline's"
    first = summary.get("first_divergence") or {}
    return (
        f"losslessness: MISMATCH, {matched}/{checked} speculative outputs equal the "
        f"baseline's; first divergence: config {first.get('config_key')} prompt "
        f"{first.get('prompt_id')} (concurrency {first.get('concurrency')}) at character "
        f"{first.get('char_index')}: baseline {first.get('baseline_head', '')[:60]!r} vs "
        f"speculative {first.get('speculative_head', '')[:60]!r}"
    )


__all__ = ["describe_losslessness", "losslessness"]
