"""The verdict's part of the report, built in one place from a loaded run.

The recommendations, the defaults compared, the break-even view with the model's curve,
the why-section and the latency views all read the same decision (``decide``), so the
first screen, the plots and results.json say the same thing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from specbench.errors import SpecbenchError
from specbench.model.hardware import HardwareProfile
from specbench.model.targets import TargetPreset
from specbench.report.verdict_views import (
    AcceptanceByPosition,
    BreakEvenView,
    LatencySeries,
    VerdictScreen,
    acceptance_by_position,
    break_even_view,
    format_concurrency,
    latency_view,
    model_config,
    verdict_screen,
)
from specbench.report.why import (
    StepBreakdown,
    interconnect_text,
    model_curve,
    step_breakdown,
)
from specbench.rundir.break_even import BreakEven, format_load
from specbench.spec_config import SpecConfig
from specbench.verdict.candidates import CI_MODEL, CI_NOISE, CI_REQUESTS, CI_TRIAL
from specbench.verdict.decision import Decision
from specbench.verdict.feasibility import memory_check, memory_text

#: Loads the model curve is drawn at (a prediction, labelled SIMULATED on the plot).
MODEL_CURVE_LOADS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

_CI_WORDS = {
    CI_TRIAL: "95% bootstrap intervals from the sweep's own per-request samples",
    CI_REQUESTS: "95% paired bootstrap intervals over the prompts in requests.jsonl",
    CI_NOISE: "a +-2% run-to-run noise margin where no per-request data was available",
    CI_MODEL: "the performance model's +-10% error against published EAGLE-3 speedups",
}


@dataclass
class WhyView:
    interconnect: str | None
    memory: str | None
    memory_fits: bool | None
    steps: list[StepBreakdown] = field(default_factory=list)


@dataclass
class VerdictSection:
    """Everything the report shows about the decision."""

    decision: Decision
    screen: VerdictScreen
    break_even: BreakEvenView
    break_even_sentence: str
    break_even_caption: str
    ci_text: str
    why: WhyView
    latency: list[LatencySeries]
    acceptance: AcceptanceByPosition | None = None


def build_section(
    decision: Decision,
    trials: pd.DataFrame,
    concurrencies: Sequence[int],
    *,
    target: TargetPreset | None = None,
    hardware: HardwareProfile | None = None,
    context_tokens: int = 1024,
    seed: int = 0,
    histograms: Sequence[Sequence[float]] = (),
) -> VerdictSection:
    """Every view of one decision (the run's stored one).

    ``histograms`` are the engine's per-request accept histograms of the configuration
    ``model_config`` names (empty where the engine or the run recorded none).
    """
    screen = verdict_screen(decision)
    curve: list[tuple[int, float]] = []
    modelled = model_config(decision)
    if target is not None and hardware is not None and modelled is not None:
        try:
            curve = model_curve(target, hardware, modelled, MODEL_CURVE_LOADS, seed=seed)
        except (SpecbenchError, ValueError):
            curve = []
    view = break_even_view(decision, curve)
    sentence, caption = break_even_text(decision, view)
    sources = sorted({c.ci_source for cands in decision.per_load.values() for c in cands})
    ci_text = (
        "Intervals: " + "; ".join(_CI_WORDS.get(s, s) for s in sources) + "." if sources else ""
    )
    return VerdictSection(
        decision,
        screen,
        view,
        sentence,
        caption,
        ci_text,
        why_view(decision, target, hardware, concurrencies, context_tokens),
        latency_view(trials, latency_names(decision, target)),
        acceptance_by_position(histograms, modelled.key) if modelled is not None else None,
    )


def latency_names(d: Decision, target: TargetPreset | None) -> dict[str, str | None]:
    names: dict[str, str | None] = {"no speculation": None}
    if d.config is not None:
        names[f"{d.config.key} (pick)"] = d.config.key
    if target is not None:
        card = target.card_config.key
        if card not in names.values():
            names[f"{card} (model card)"] = card
    return names


def break_even_text(v: Decision, view: BreakEvenView) -> tuple[str, str]:
    """(sentence under "Break-even", plot caption); the model is named as a model."""
    loads = sorted(r.concurrency for r in v.loads)
    model_be = _model_crossing(view)
    model_note = ""
    if view.model_label:
        where = (
            f"it crosses 1.0x near {format_concurrency(model_be)} concurrent requests"
            if model_be is not None
            else "it does not cross 1.0x in the range drawn"
        )
        model_note = (
            f" The dashed curve is the performance model's prediction (SIMULATED, not a "
            f"measurement): {where}."
        )
    if v.kind == "speculate-below" and v.break_even_range is not None:
        sentence = _located_sentence(v.break_even_range, loads)
    elif v.kind == "speculate-below" and v.break_even is not None:
        sentence = (
            f"About {format_concurrency(v.break_even)} concurrent requests, interpolated "
            f"(linear in log load) between the loads tested around it; loads tested: "
            f"{', '.join(str(c) for c in loads)}."
        )
    elif v.kind == "speculate":
        sentence = (
            f"Not reached: speculation pays at every load tested up to {loads[-1]}, so the "
            "break-even lies above it; it is not extrapolated."
        )
        if model_be is not None:
            sentence += (
                f" Add --concurrency {round(model_be)} to measure where the model expects it."
            )
    elif v.kind == "does-not-fit":
        sentence = "None: the server does not fit in GPU memory at the TP it was run at."
    else:
        sentence = "None: speculation does not pay at the lowest load tested."
    caption = (
        "Speedup against load with 95% intervals (vertical bars): the mixed-load pick, the "
        "model card's and SGLang's automatic configurations; the dotted line is no "
        "speculation." + model_note
    )
    return sentence, caption


def _located_sentence(be: BreakEven, loads: Sequence[int]) -> str:
    """The break-even with its interval and the two loads behind it, or why it is not
    located and which loads would locate it."""
    tested = ", ".join(str(c) for c in loads)
    if be.located:
        return (
            f"About {be.range_text()} concurrent requests (the point, then the range the "
            f"intervals allow), interpolated (linear in log load) between the loads around "
            f"it, {be.evidence()}. Loads tested: {tested}."
        )
    why = (
        f"no tree completed at {be.high_load}"
        if be.high_speedup is None
        else f"at {be.high_load} the pick is within noise of 1.0x"
    )
    more = (
        f" Add --concurrency {','.join(map(str, be.suggested_loads))} to locate it."
        if be.suggested_loads
        else ""
    )
    return (
        f"Not located: from about {format_load(be.low)} to {be.high_load} or more "
        f"concurrent requests. The loads tested ({tested}) cannot place it: {why} "
        f"({be.evidence()}).{more}"
    )


def _model_crossing(view: BreakEvenView) -> float | None:
    from specbench.verdict.candidates import interpolate_break_even

    pts = list(zip(view.model_x, view.model_y, strict=True))
    for (c0, s0), (c1, s1) in itertools.pairwise(pts):
        if s0 > 1.0 >= s1:
            return interpolate_break_even(c0, s0, c1, s1)
    return None


def why_view(
    d: Decision,
    target: TargetPreset | None,
    hardware: HardwareProfile | None,
    concurrencies: Sequence[int],
    context_tokens: int,
) -> WhyView:
    """Interconnect, memory and step time; the memory check is the decision's own (a run
    written before the decision stored one gets the same check made here)."""
    if target is None or hardware is None:
        return WhyView(None, None, None)
    loads = sorted({int(c) for c in concurrencies})
    check = d.memory or memory_check(target, hardware, max(loads), context_tokens)
    config = model_config(d)
    steps: list[StepBreakdown] = []
    for c in (loads[0], loads[-1]) if len(loads) > 1 else loads:
        steps.append(step_breakdown(target, hardware, None, c, None))
        if config is not None:
            steps.append(step_breakdown(target, hardware, config, c, _tau(d, config, c)))
    return WhyView(interconnect_text(hardware, target), memory_text(check), check.fits, steps)


def _tau(d: Decision, config: SpecConfig, concurrency: int) -> float | None:
    cand = d.candidate(config, concurrency)
    return None if cand is None else cand.tau


__all__ = [
    "MODEL_CURVE_LOADS",
    "VerdictSection",
    "WhyView",
    "break_even_text",
    "build_section",
]
