"""Acceptance of one load: tau with its source, and per-position acceptance.

Two sources exist and are never mixed: the per-request counters the server attaches to
each response (SGLang ``spec_verify_ct``, vLLM ``metrics.speculative_decoding``) and
the server-wide counters over the load (vLLM ``/metrics``: 1 + accepted / drafts, as in
``vllm/v1/spec_decode/metrics.py``). Per-request wins when every successful request
carried it; otherwise the counters; ``tau_source`` says which. Per-position acceptance
(the share of verify steps that accepted the draft at position i) comes from vLLM's
per-position counters and from the per-request acceptance histograms (vLLM's
``acceptance_histogram``, SGLang's ``spec_accept_histogram``: index j counts the steps
that accepted exactly j drafts); it is what a chain acceptance model is fitted to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from specbench.rundir.records import RequestRecord

TAU_PER_REQUEST = "per-request"
TAU_COUNTERS = "metrics-counters"
TAU_NONE = "none"


def histogram_total(records: Sequence[RequestRecord]) -> list[int]:
    """The per-request acceptance histograms summed (padded to the longest)."""
    total: list[int] = []
    for record in records:
        for j, count in enumerate(record.spec_accept_histogram or []):
            if j >= len(total):
                total.extend([0] * (j + 1 - len(total)))
            total[j] += count
    return total


def position_rates_from_histogram(histogram: Sequence[int]) -> list[float]:
    """P(step accepted at least i+1 drafts) for i = 0..k-1."""
    steps = sum(histogram)
    if steps <= 0:
        return []
    return [sum(histogram[i + 1 :]) / steps for i in range(len(histogram) - 1)]


def load_acceptance(
    records: Sequence[RequestRecord], counters: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The acceptance summary of one load (stored as JSON in the run directory).

    ``counters`` is the engine's counter delta over the measured requests (vLLM
    ``SpecCounters.as_dict()``), or None when the engine has none.
    """
    ok = [r for r in records if r.ok]
    reporting = [r for r in ok if r.spec_verify_ct]
    out: dict[str, Any] = {"requests": len(ok), "requests_with_stats": len(reporting)}
    tau_request = None
    if reporting:
        steps = sum(r.spec_verify_ct or 0 for r in reporting)
        tokens = sum(
            (r.spec_verify_ct or 0) + r.spec_accepted_tokens
            if r.spec_accepted_tokens is not None
            else r.completion_tokens
            for r in reporting
        )
        tau_request = tokens / steps
        out["per_request"] = {"verify_steps": steps, "tau": tau_request}
    histogram = histogram_total(ok)
    if histogram:
        out["histogram"] = histogram
        out["position_acceptance_histogram"] = position_rates_from_histogram(histogram)
    tau_counters = None
    if counters is not None:
        drafts = float(counters.get("drafts") or 0.0)
        accepted = float(counters.get("accepted") or 0.0)
        per_position = [float(v) for v in counters.get("accepted_per_position") or []]
        tau_counters = 1.0 + accepted / drafts if drafts > 0 else None
        out["counters"] = {**counters, "tau": tau_counters}
        if drafts > 0:
            out["position_acceptance"] = [v / drafts for v in per_position]
    if reporting and len(reporting) == len(ok):
        out["tau_source"], out["tau"] = TAU_PER_REQUEST, tau_request
    elif tau_counters is not None:
        out["tau_source"], out["tau"] = TAU_COUNTERS, tau_counters
    else:
        out["tau_source"], out["tau"] = TAU_NONE, None
    if "position_acceptance" not in out and "position_acceptance_histogram" in out:
        out["position_acceptance"] = out["position_acceptance_histogram"]
    return out


__all__ = [
    "TAU_COUNTERS",
    "TAU_NONE",
    "TAU_PER_REQUEST",
    "histogram_total",
    "load_acceptance",
    "position_rates_from_histogram",
]
