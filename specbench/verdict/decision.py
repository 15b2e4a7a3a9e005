"""The decision: one object, made once from a run's rows, that every surface reads.

The sweep makes it and stores it in results.json; the console, the report, the
comparison page, the Markdown summary and ``predict`` read it (``Decision.from_results``)
and never rank anything themselves, so they cannot disagree. Making it:

1. merge the completed rows into candidates per (tree, load), each with an interval;
2. drop what cannot be launched (the engine refuses it, or it does not fit in GPU
   memory at that load), keeping each reason;
3. pick per load (cheapest within noise of the best that pays) and for mixed load
   (minimax regret over the loads that pay), the mixed-load pick standing at every load
   where it is within noise;
4. compare the configurations the user would otherwise launch, and say it in one
   headline (headline.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from specbench.rundir.break_even import BreakEven
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict.candidates import (
    KIND_NO_FIT,
    KIND_OFF,
    KIND_SPECULATE,
    KIND_SPECULATE_BELOW,
    Candidate,
    IntervalSource,
    candidate_table,
    candidates_at,
    config_from_json,
    config_json,
    find_candidate,
    finite,
)
from specbench.verdict.defaults import DefaultComparison, compare_defaults
from specbench.verdict.feasibility import Exclusion, Feasibility, MemoryCheck
from specbench.verdict.headline import Headline, write_headline
from specbench.verdict.picks import LoadPick, mixed_load, one_server_at, pick_at

STATUS_NEVER_PAYS = "never-pays"
STATUS_CROSSES = "crosses"
STATUS_PAYS_EVERYWHERE = "pays-everywhere-measured"
#: No verdict on speed is possible: no baseline at the primary concurrency (speedup NaN)
#: or no speculative configuration completed at all.
STATUS_UNKNOWN = "unknown"
STATUS_NO_FIT = "does-not-fit"

HOST_STAGED = "host-staged"

#: Builds (speculative flags, copyable launch line) of a configuration. The engine
#: adapter supplies it (``EngineAdapter.launch_line``): the decision only names the
#: configuration, the engine knows how to spell it.
LaunchLine = Callable[[SpecConfig], tuple[list[str], str]]

_STATUS_OF_KIND = {
    KIND_SPECULATE: STATUS_PAYS_EVERYWHERE,
    KIND_SPECULATE_BELOW: STATUS_CROSSES,
    KIND_OFF: STATUS_NEVER_PAYS,
    KIND_NO_FIT: STATUS_NO_FIT,
}


@dataclass
class Decision:
    """What to launch, how sure, against what, at what cost; and everything behind it."""

    kind: str
    config: SpecConfig | None  # the mixed-load pick (None: no speculation)
    launch: str
    flags: list[str] | None
    break_even: float | None
    reason: str
    headline: Headline
    concurrencies: list[int]
    loads: list[LoadPick]
    #: Launchable candidates per load, best first (the ranking every table shows).
    per_load: dict[int, list[Candidate]]
    defaults: list[DefaultComparison] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    #: Loads where not even the server without speculation fits, and why.
    unfit_loads: dict[int, str] = field(default_factory=dict)
    memory: MemoryCheck | None = None
    speculate_at: list[int] = field(default_factory=list)
    off_at: list[int] = field(default_factory=list)
    worst_fraction_of_best: float | None = None
    #: The break-even's interval and the loads behind it (speculate-below only).
    break_even_range: BreakEven | None = None
    simulated: bool = False

    @property
    def primary(self) -> int:
        return self.concurrencies[0]

    @property
    def known(self) -> bool:
        """A speedup exists somewhere (else nothing can be said about speed)."""
        return any(p.speedup is not None for p in self.loads)

    @property
    def status(self) -> str:
        if self.kind == KIND_NO_FIT:
            return STATUS_NO_FIT
        return _STATUS_OF_KIND[self.kind] if self.known else STATUS_UNKNOWN

    @property
    def speculation_recommended(self) -> bool:
        return self.kind in (KIND_SPECULATE, KIND_SPECULATE_BELOW)

    def candidate(self, config: SpecConfig, concurrency: int) -> Candidate | None:
        return find_candidate(self.per_load, config, concurrency)

    def ranking(self, concurrency: int | None = None) -> list[Candidate]:
        """Candidates at one load (the primary by default): the pick first, then by speedup."""
        c = self.primary if concurrency is None else concurrency
        cands = list(self.per_load.get(c, ()))
        pick = next((p for p in self.loads if p.concurrency == c), None)
        chosen = self.config if self.config is not None else (pick.config if pick else None)
        first = [x for x in cands if chosen is not None and x.config == chosen]
        return first + [x for x in cands if x not in first]

    # ------------------------------------------------------------------ results.json
    def to_json(self) -> dict[str, Any]:
        """results.json's decision fields: the older ``best``/``break_even``/
        ``verdict_reason`` beside ``recommendations``, ``verdict``, ``defaults`` and the
        whole decision under ``decision`` (what ``from_results`` reads back)."""
        return {
            "best": self._best(),
            "break_even": {
                "concurrency": self.break_even,
                "status": self.status,
                "speculation_recommended": self.speculation_recommended,
                "reason": self.reason,
            },
            "verdict_reason": self.reason,
            "recommendations": [p.to_json() for p in self.loads],
            "verdict": {
                "kind": self.kind,
                "break_even": self.break_even,
                "break_even_range": (
                    None if self.break_even_range is None else self.break_even_range.to_json()
                ),
                "config": None if self.config is None else config_json(self.config),
                "launch": self.launch,
                "reason": self.reason,
                "headline": self.headline.text,
                "speculate_at": list(self.speculate_at),
                "off_at": list(self.off_at),
                "worst_fraction_of_best": self.worst_fraction_of_best,
            },
            "defaults": [d.to_json() for d in self.defaults],
            "decision": {
                "headline": self.headline.to_json(),
                "concurrencies": list(self.concurrencies),
                "flags": self.flags,
                "simulated": self.simulated,
                "candidates": {
                    str(c): [x.to_json() for x in cands] for c, cands in self.per_load.items()
                },
                "excluded": [e.to_json() for e in self.excluded],
                "unfit_loads": {str(c): why for c, why in self.unfit_loads.items()},
                "memory": None if self.memory is None else self.memory.to_json(),
            },
        }

    def _best(self) -> dict[str, Any] | None:
        """The mixed-load pick in results.json's ``best`` shape."""
        if self.config is None:
            return None
        curve = {c: self.candidate(self.config, c) for c in self.concurrencies}
        at_primary = curve.get(self.primary)
        return {
            **self.config.as_dict(),
            "config_key": self.config.key,
            "tau": None if at_primary is None else at_primary.tau,
            "speedup": None if at_primary is None else at_primary.speedup,
            "concurrency": self.primary,
            "speedup_by_concurrency": {
                str(c): None if x is None else x.speedup for c, x in curve.items()
            },
            "flags": self.flags,
            "launch_command": self.launch,
            "simulated": self.simulated,
        }

    @classmethod
    def from_results(cls, results: Mapping[str, Any]) -> Decision | None:
        """The decision results.json stores (None: a run written before it did)."""
        body = results.get("decision")
        verdict = results.get("verdict")
        if not isinstance(body, Mapping) or not isinstance(verdict, Mapping):
            return None
        per_load = {
            int(c): [Candidate.from_json(x, int(c)) for x in cands]
            for c, cands in (body.get("candidates") or {}).items()
        }
        memory = body.get("memory")
        cfg = verdict.get("config")
        be = verdict.get("break_even")
        return cls(
            kind=str(verdict["kind"]),
            config=None if cfg is None else config_from_json(cfg),
            launch=str(verdict.get("launch") or ""),
            flags=body.get("flags"),
            break_even=None if be is None else float(be),
            reason=str(verdict.get("reason") or ""),
            headline=Headline.from_json(body.get("headline") or {}),
            concurrencies=[int(c) for c in body.get("concurrencies") or ()],
            loads=[LoadPick.from_json(p) for p in results.get("recommendations") or ()],
            per_load=per_load,
            defaults=[
                DefaultComparison.from_json(d, per_load) for d in results.get("defaults") or ()
            ],
            excluded=[
                Exclusion(config_from_json(e["config"]), int(e["concurrency"]), str(e["reason"]))
                for e in body.get("excluded") or ()
            ],
            unfit_loads={int(c): str(w) for c, w in (body.get("unfit_loads") or {}).items()},
            memory=None if memory is None else MemoryCheck.from_json(memory),
            speculate_at=[int(c) for c in verdict.get("speculate_at") or ()],
            off_at=[int(c) for c in verdict.get("off_at") or ()],
            worst_fraction_of_best=finite(verdict.get("worst_fraction_of_best")),
            break_even_range=break_even_from_json(verdict.get("break_even_range")),
            simulated=bool(body.get("simulated")),
        )


def break_even_from_json(data: Any) -> BreakEven | None:
    """A stored ``break_even_range`` back as the object its texts come from."""
    if not isinstance(data, Mapping):
        return None

    def interval(value: Any) -> tuple[float, float, float] | None:
        if value is None:
            return None
        speed, low, high = (float(v) for v in value)
        return speed, low, high

    low_at, high_at = (interval(v) for v in data["speedup_at_loads"])
    if low_at is None:
        return None
    low_load, high_load = (int(c) for c in data["loads"])
    high = data.get("high")
    return BreakEven(
        point=float(data["concurrency"]),
        low=float(data["low"]),
        high=None if high is None else float(high),
        low_load=low_load,
        high_load=high_load,
        low_speedup=low_at,
        high_speedup=high_at,
        suggested_loads=tuple(int(c) for c in data.get("suggested_loads") or ()),
    )


# ---------------------------------------------------------------------------- making it
def decide(
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    *,
    launch_line: LaunchLine | None = None,
    plain_launch: str | None = None,
    intervals: IntervalSource | None = None,
    defaults: Mapping[str, SpecConfig] | None = None,
    feasibility: Feasibility | None = None,
    rerun: Callable[[int], str] | None = None,
    simulated: bool = False,
    hardware_class: str | None = None,
) -> Decision:
    """The decision of one run.

    ``trials`` are TRIAL_COLUMNS rows (normalise_trials), or the model's predictions in
    the same columns; ``concurrencies[0]`` is the primary load. ``launch_line`` (the
    engine adapter's) spells a configuration and ``plain_launch`` the same server without
    speculation. ``intervals`` is the fallback for rows without ``speedup_ci_low/high``;
    ``defaults`` names what a user would otherwise launch; ``feasibility`` says what can
    be launched at all; ``rerun(tp)`` is the command that measures at another TP, named
    when nothing fits. ``hardware_class`` only changes the wording.
    """
    if not concurrencies:
        raise ValueError("decide needs at least one concurrency")
    order = [int(c) for c in dict.fromkeys(int(c) for c in concurrencies)]
    loads = sorted(order)
    check = feasibility or Feasibility()

    def line(config: SpecConfig | None) -> str:
        if config is None:
            return plain_launch or ""
        return launch_line(config)[1] if launch_line is not None else ""

    table = candidate_table(trials)
    every = {c: candidates_at(table, c, intervals) for c in loads}
    unfit = {c: why for c in loads if (why := check.problem(None, c)) is not None}
    per_load: dict[int, list[Candidate]] = {}
    excluded: list[Exclusion] = []
    for c in loads:
        if c in unfit:
            per_load[c] = []
            continue
        per_load[c] = []
        for cand in every[c]:
            why = check.problem(cand.config, c)
            if why is None:
                per_load[c].append(cand)
            else:
                excluded.append(Exclusion(cand.config, c, why))
    baseline = _baseline_loads(trials)
    measured = [c for c in loads if c not in unfit and (every[c] or c in baseline)]
    picks = [pick_at(per_load[c], c, line) for c in measured]
    mixed = mixed_load(picks, per_load, host_staged=hardware_class == HOST_STAGED)
    if mixed.config is not None:
        # One server, one tree: the mixed-load pick stands wherever it pays.
        picks = [
            one_server_at(per_load[p.concurrency], p.concurrency, line, mixed.config) for p in picks
        ]
    compared = compare_defaults(per_load, defaults or {})
    kind, config, reason = mixed.kind, mixed.config, mixed.reason
    if loads[0] in unfit:
        kind, config, reason = KIND_NO_FIT, None, unfit[loads[0]]
        picks = []
    memory = check.memory(config, max(measured) if measured else loads[0])
    flags, launch = None, line(None)
    if config is not None:
        flags, launch = launch_line(config) if launch_line is not None else (None, "")
    if kind == KIND_NO_FIT:
        launch = _no_fit_launch(memory, rerun)
    prefix = "SIMULATED: " if simulated else ""
    decision = Decision(
        kind=kind,
        config=config,
        launch=launch,
        flags=flags,
        break_even=mixed.break_even if kind != KIND_NO_FIT else None,
        reason=prefix + reason,
        headline=Headline(""),
        concurrencies=order,
        loads=picks,
        per_load=per_load,
        defaults=compared,
        excluded=excluded,
        unfit_loads=unfit,
        memory=memory,
        speculate_at=mixed.speculate_at if kind != KIND_NO_FIT else [],
        off_at=mixed.off_at if kind != KIND_NO_FIT else [],
        worst_fraction_of_best=mixed.worst_fraction_of_best,
        break_even_range=mixed.break_even_range if kind != KIND_NO_FIT else None,
        simulated=simulated,
    )
    decision.headline = write_headline(decision, _ttft(trials, decision))
    return decision


def _no_fit_launch(memory: MemoryCheck | None, rerun: Callable[[int], str] | None) -> str:
    """What to run instead when nothing fits: the rerun at the TP that fits, if any."""
    if memory is None or memory.min_tp is None or rerun is None:
        return ""
    return rerun(memory.min_tp)


def _baseline_loads(trials: pd.DataFrame) -> list[int]:
    """Concurrencies with a completed baseline: a speedup exists only there."""
    if trials.empty:
        return []
    rows = trials[
        (trials["config_key"].astype(str) == BASELINE_KEY)
        & (trials["state"].astype(str) == "complete")
    ]
    return sorted({int(c) for c in pd.to_numeric(rows["concurrency"], errors="coerce").dropna()})


def _ttft(trials: pd.DataFrame, decision: Decision) -> tuple[int, float, float] | None:
    """(load, baseline TTFT p50, pick's TTFT p50) at the lowest load the pick is run at,
    from the measured rows (None: the rows carry no TTFT, e.g. a model prediction)."""
    config, loads = decision.config, decision.speculate_at
    if config is None or not loads or trials.empty or "ttft_ms_p50" not in trials:
        return None
    c = min(loads)
    cand = decision.candidate(config, c)
    names = {config.key, *(cand.aliases if cand is not None else ())}
    done = trials[
        (trials["state"].astype(str) == "complete")
        & (pd.to_numeric(trials["concurrency"], errors="coerce") == c)
    ]
    ttft = pd.to_numeric(done["ttft_ms_p50"], errors="coerce")
    keys = done["config_key"].astype(str)
    base = finite(ttft[keys == BASELINE_KEY].mean())
    spec = finite(ttft[keys.isin(names)].mean())
    if base is None or spec is None:
        return None
    return c, base, spec


__all__ = [
    "HOST_STAGED",
    "STATUS_CROSSES",
    "STATUS_NEVER_PAYS",
    "STATUS_NO_FIT",
    "STATUS_PAYS_EVERYWHERE",
    "STATUS_UNKNOWN",
    "Decision",
    "LaunchLine",
    "decide",
]
