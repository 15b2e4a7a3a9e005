"""What the request-rate loads decide: the pick at each rate, each configuration's
highest rate within the SLOs, and the headline that puts them side by side.

Computed once, where results.json is written, from the rate rows alone, so the report,
the console and the gate read the same figures. Per rate the pick maximises goodput
when there are objectives (vllm bench serve's goodput: requests per second that met
every objective), else the output tokens/s each user sees, among the configurations that
kept up with the offered rate; ties within :data:`NOISE_MARGIN` go to the cheaper tree
(no speculation cheapest; recommend.tree_cost's order), as the closed-loop decision's do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from specbench.spec_config import BASELINE_KEY
from specbench.verdict.candidates import NOISE_MARGIN

#: A configuration kept up with a rate when it served at least this fraction of it.
KEPT_UP = 0.95


@dataclass(frozen=True)
class RatePick:
    """The configuration to run at one offered rate, and by what it was picked."""

    load: str
    rate_per_s: float
    config_key: str
    by: str
    value: float | None
    baseline_value: float | None

    @property
    def gain(self) -> float | None:
        """The pick's figure over the baseline's at the same rate (None: unknown)."""
        if self.value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value


@dataclass(frozen=True)
class SloRateEntry:
    """A configuration's highest rate found within every objective.

    The true SLO-rate lies in [``rate_per_s``, ``high_per_s``): the highest rate that
    met them and the lowest that did not (None: none missed, ``at_top``).
    """

    config_key: str
    rate_per_s: float
    high_per_s: float | None
    at_top: bool
    method: str
    num_steps: int | None = None
    topk: int | None = None
    num_draft_tokens: int | None = None

    def describe(self) -> str:
        """ "4.6 req/s [4.6-4.7]", or "at least 8 req/s" at the top of the range."""
        if self.at_top or self.high_per_s is None:
            return f"at least {self.rate_per_s:.3g} req/s"
        return f"{self.rate_per_s:.3g} req/s [{self.rate_per_s:.3g}-{self.high_per_s:.3g}]"


def _cost(row: Mapping[str, Any]) -> tuple[int, int, int]:
    """tree_cost of a row's configuration, read from its fields (no speculation: 0)."""
    if row.get("config_key") == BASELINE_KEY:
        return (0, 0, 0)
    return (
        int(row.get("num_draft_tokens") or 0),
        int(row.get("num_steps") or 0),
        int(row.get("topk") or 0),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def pick_per_load(rows: Sequence[Mapping[str, Any]], with_slo: bool) -> list[RatePick]:
    """The pick at every measured rate, lowest rate first."""
    by = "goodput_per_s" if with_slo else "output_tokens_per_s_per_user"
    loads: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        loads.setdefault(str(row["load"]), []).append(row)
    picks: list[RatePick] = []
    for load, group in sorted(loads.items(), key=lambda kv: float(kv[1][0]["rate_per_s"])):
        rate = float(group[0]["rate_per_s"])
        base = next((r for r in group if r["config_key"] == BASELINE_KEY), None)
        scored = [(_number(r.get(by)), r) for r in group if with_slo or _kept_up(r)]
        usable = [(v, r) for v, r in scored if v is not None]
        if not usable:
            continue
        top = max(v for v, _ in usable)
        tied = [(v, r) for v, r in usable if v >= top * (1.0 - NOISE_MARGIN)]
        value, pick = min(tied, key=lambda vr: (_cost(vr[1]), -vr[0]))
        picks.append(
            RatePick(
                load,
                rate,
                str(pick["config_key"]),
                by,
                value,
                None if base is None else _number(base.get(by)),
            )
        )
    return picks


def _kept_up(row: Mapping[str, Any]) -> bool:
    achieved = _number(row.get("achieved_rate_per_s"))
    offered = _number(row.get("scheduled_rate_per_s")) or _number(row.get("rate_per_s"))
    return achieved is not None and offered is not None and achieved >= KEPT_UP * offered


def slo_rates(stored: Mapping[str, Mapping[str, Any]]) -> list[SloRateEntry]:
    """Every configuration's SLO-rate, highest first (ties: the cheaper tree first);
    ``stored`` maps a configuration key to its SLO-rate with its tree fields."""
    entries = [
        SloRateEntry(
            key,
            float(found.get("rate_per_s") or 0.0),
            _number(found.get("high_per_s")),
            bool(found.get("at_top")),
            str(found.get("method", "")),
            *(_count(found.get(name)) for name in ("num_steps", "topk", "num_draft_tokens")),
        )
        for key, found in stored.items()
    ]
    return sorted(entries, key=lambda e: (-e.rate_per_s, _cost(asdict(e))))


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def recommended_slo_rate(entries: Sequence[SloRateEntry]) -> SloRateEntry | None:
    """The speculative configuration with the highest SLO-rate (ties within noise: the
    cheaper tree), or None when none was measured."""
    spec = [e for e in entries if e.config_key != BASELINE_KEY]
    if not spec:
        return None
    top = max(e.rate_per_s for e in spec)
    tied = [e for e in spec if e.rate_per_s >= top * (1.0 - NOISE_MARGIN)]
    return min(tied, key=lambda e: (_cost(asdict(e)), -e.rate_per_s))


def slo_headline(slo_text: str, entries: Sequence[SloRateEntry]) -> str | None:
    """ "within p99 TPOT 50 ms: no speculation 3.1 req/s [3.1-3.2], 2-1-3 4.6 req/s
    [4.6-4.7]": the baseline's SLO-rate beside the recommended configuration's."""
    base = next((e for e in entries if e.config_key == BASELINE_KEY), None)
    best = recommended_slo_rate(entries)
    if base is None and best is None:
        return None
    parts = []
    if base is not None:
        parts.append(f"no speculation {base.describe()}")
    if best is not None:
        parts.append(f"{best.config_key} {best.describe()}")
    return f"within {slo_text}: {', '.join(parts)}"


def rate_decision(
    rows: Sequence[Mapping[str, Any]],
    stored_slo_rates: Mapping[str, Mapping[str, Any]],
    slo_text: str,
) -> dict[str, Any]:
    """results.json's "rates" decision: the picks per rate, the SLO-rates, the headline."""
    entries = slo_rates(stored_slo_rates)
    best = recommended_slo_rate(entries)
    return {
        "per_load": [{**asdict(p), "gain": p.gain} for p in pick_per_load(rows, bool(slo_text))],
        "slo_rates": [asdict(e) for e in entries],
        "recommended": None if best is None else best.config_key,
        "headline": slo_headline(slo_text, entries) if slo_text else None,
    }


__all__ = [
    "KEPT_UP",
    "RatePick",
    "SloRateEntry",
    "pick_per_load",
    "rate_decision",
    "recommended_slo_rate",
    "slo_headline",
    "slo_rates",
]
