"""What can be launched at all: GPU memory and what the engine can run, before ranking.

A copyable launch line that the run's own memory check says cannot start is worse than
no answer, and so is a token tree for an engine that drafts chains only. Both are
filtered out of the candidates before anything is ranked, and each exclusion keeps its
reason so that every surface can say why a faster-looking configuration is not the pick.

The memory arithmetic is the performance model's ``memory_fit`` (weights from the
model's config.json shape, KV per token, the draft, against the share of GPU memory the
engine hands to weights and KV cache); the fitting alternative is the smallest TP, a
power of two up to the box's GPU count, at which the same server fits.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from specbench.errors import SpecbenchError
from specbench.model.engines import EngineProfile, load_engine
from specbench.model.hardware import HardwareProfile, load_hardware
from specbench.model.memory import MemoryFit, memory_fit
from specbench.model.targets import TargetPreset
from specbench.spec_config import SpecConfig

#: Tree slots per request the summary check reserves when no tree is named: a typical
#: verified tree (3-4-8).
TYPICAL_DRAFT_SLOTS = 8

#: Why an engine refuses a configuration (None: it runs it); the engine adapter's
#: ``check_config``.
EngineCheck = Callable[[SpecConfig], str | None]


@dataclass(frozen=True)
class MemoryCheck:
    """Per-GPU memory of target weights, draft weights and KV cache vs what the GPU has."""

    gpu: str
    gpu_gib: float
    tp: int
    weights_gib: float
    draft_gib: float
    kv_gib: float
    concurrency: int
    context_tokens: int
    usable_gib: float
    min_tp: int | None  # the smallest TP (power of two, up to the box) that fits

    @property
    def needed_gib(self) -> float:
        return self.weights_gib + self.draft_gib + self.kv_gib

    @property
    def fits(self) -> bool:
        return self.needed_gib <= self.usable_gib

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "needed_gib": self.needed_gib, "fits": self.fits}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MemoryCheck:
        min_tp = data.get("min_tp")
        return cls(
            str(data["gpu"]),
            float(data["gpu_gib"]),
            int(data["tp"]),
            float(data["weights_gib"]),
            float(data["draft_gib"]),
            float(data["kv_gib"]),
            int(data["concurrency"]),
            int(data["context_tokens"]),
            float(data["usable_gib"]),
            None if min_tp is None else int(min_tp),
        )


def memory_check(
    target: TargetPreset,
    hardware: HardwareProfile,
    concurrency: int,
    context_tokens: int,
    *,
    engine: EngineProfile | None = None,
    draft_tokens: int = TYPICAL_DRAFT_SLOTS,
) -> MemoryCheck:
    """Does the target (with ``draft_tokens`` tree slots per request, 0: no speculation,
    and the KV of ``concurrency`` requests) fit, and from which TP size on does it?"""
    profile = engine or load_engine()

    def fit(hw: HardwareProfile) -> MemoryFit:
        return memory_fit(
            target,
            hw,
            profile,
            batch=concurrency,
            sequence_tokens=context_tokens,
            draft_tokens=draft_tokens,
        )

    here = fit(hardware)
    min_tp = None
    size = 1
    while size <= max(hardware.gpus, hardware.tp):
        try:
            candidate = fit(hardware.with_tp(size))
        except SpecbenchError:
            candidate = None
        if candidate is not None and candidate.fits:
            min_tp = size
            break
        size *= 2
    return MemoryCheck(
        hardware.gpu.name,
        hardware.gpu.memory_gib,
        hardware.tp,
        here.weights_gib,
        here.draft_gib,
        here.kv_gib,
        concurrency,
        context_tokens,
        here.capacity_gib,
        min_tp,
    )


def memory_text(check: MemoryCheck) -> str:
    """The memory check as one sentence a deployer can act on."""
    need = (
        f"{check.weights_gib:.1f} GiB of target weights + {check.draft_gib:.1f} GiB of draft "
        f"+ {check.kv_gib:.1f} GiB of KV cache ({check.concurrency} requests x "
        f"{check.context_tokens} tokens) per GPU at TP {check.tp}"
    )
    have = f"{check.usable_gib:.0f} GiB usable of {check.gpu_gib:.0f} GiB ({check.gpu})"
    if check.fits:
        return f"Fits: {need}, against {have}."
    if check.min_tp is not None:
        fix = f"launch with --tp-size {check.min_tp} or larger (specbench's --tp {check.min_tp})"
    else:
        fix = "it does not fit on this box at any TP size; use larger GPUs or more of them"
    return f"Does NOT fit: {need}, against {have}; {fix}."


def hardware_profile(hardware: Mapping[str, Any]) -> HardwareProfile | None:
    """The profile a run's manifest ``hardware`` names, at its TP (None: not one this
    specbench knows, e.g. an endpoint's unnamed machine)."""
    name = str(hardware.get("name", "") or "")
    tp = hardware.get("tp")
    if not name:
        return None
    try:
        return load_hardware(name, tp=tp if isinstance(tp, int) and tp > 0 else None)
    except SpecbenchError:
        return None


#: Options of the original command a rerun drops: it writes a run directory of its own.
_RERUN_DROPS = ("--tp", "--out")


def with_tp(command: Sequence[str], tp: int) -> str:
    """``command`` (a specbench command line) with its ``--tp`` set to ``tp`` and without
    its output folder: the rerun that the memory advice names, runnable as printed."""
    out: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
            continue
        if arg in _RERUN_DROPS:
            skip = True
            continue
        if any(arg.startswith(f"{flag}=") for flag in _RERUN_DROPS):
            continue
        out.append(arg)
    return shlex.join([*out, "--tp", str(tp)])


@dataclass(frozen=True)
class Exclusion:
    """A configuration filtered out at one load before ranking, and why."""

    config: SpecConfig
    concurrency: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "config": {"key": self.config.key, **self.config.as_dict()},
            "concurrency": self.concurrency,
            "reason": self.reason,
        }


@dataclass
class Feasibility:
    """What the decision may recommend on this deployment: the engine's own check and,
    where the target and hardware are known, the memory check at every load."""

    engine_check: EngineCheck | None = None
    target: TargetPreset | None = None
    hardware: HardwareProfile | None = None
    engine: EngineProfile | None = None
    context_tokens: int = 1024
    #: Memory checks by (tree slots, concurrency): configurations share their slots.
    _checks: dict[tuple[int, int], MemoryCheck] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # The engine's memory share is read once, not per check.
        if self.engine is None and self.target is not None and self.hardware is not None:
            self.engine = load_engine()

    @property
    def knows_memory(self) -> bool:
        return self.target is not None and self.hardware is not None

    def memory(self, config: SpecConfig | None, concurrency: int) -> MemoryCheck | None:
        """The memory check of ``config`` (None: no speculation) at ``concurrency``."""
        if self.target is None or self.hardware is None:
            return None
        slots = 0 if config is None else config.num_draft_tokens
        key = (slots, concurrency)
        if key not in self._checks:
            self._checks[key] = memory_check(
                self.target,
                self.hardware,
                concurrency,
                self.context_tokens,
                engine=self.engine,
                draft_tokens=slots,
            )
        return self._checks[key]

    def problem(self, config: SpecConfig | None, concurrency: int) -> str | None:
        """Why ``config`` cannot be launched at ``concurrency`` (None: it can)."""
        if config is not None and self.engine_check is not None:
            refused = self.engine_check(config)
            if refused is not None:
                return refused
        check = self.memory(config, concurrency)
        if check is not None and not check.fits:
            return memory_text(check)
        return None


__all__ = [
    "TYPICAL_DRAFT_SLOTS",
    "EngineCheck",
    "Exclusion",
    "Feasibility",
    "MemoryCheck",
    "hardware_profile",
    "memory_check",
    "memory_text",
    "with_tp",
]
