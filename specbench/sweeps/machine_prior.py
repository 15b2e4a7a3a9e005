"""The search's prior from the machine it launches on: NVML's inventory, no collectives.

A launch-mode sweep without ``--hardware`` used to rank configurations with the model of
the default profile (h200-nvlink) whatever the GPUs were, and a wrong prior costs GPU
time: on an H100 PCIe box priced as NVLink, `benchmarks/gpu_minutes.py` measured ~13x the
launches of the right prior. NVML answers in milliseconds what GPU this is and how the
GPUs are linked, so the prior is the shipped profile of that GPU and interconnect class.
Only a launching sweep reads it: an attached server may run on another host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from specbench.errors import BadInputError
from specbench.model.hardware import profile_for_machine
from specbench.topology.classify import InterconnectClass, classify
from specbench.topology.inventory import build_inventory
from specbench.topology.nvml import NvmlSource, PynvmlSource, RecordedNvml

#: A recorded NVML inventory (`specbench probe`'s topology JSON) read instead of the
#: live NVML: reproduces another machine's choice, and lets tests use recorded machines.
NVML_FROM_ENV = "SPECBENCH_NVML_FROM"


@dataclass(frozen=True)
class MachinePrior:
    """The shipped hardware profile chosen for this machine (None: its GPU is one no
    shipped profile knows), and the sentence saying why."""

    profile: str | None
    reason: str


def _source() -> NvmlSource:
    recorded = os.environ.get(NVML_FROM_ENV)
    return RecordedNvml.load(Path(recorded)) if recorded else PynvmlSource()


def machine_prior(tp: int, source: NvmlSource | None = None) -> MachinePrior | None:
    """The prior for tensor parallelism ``tp`` on this machine; None without GPUs."""
    nvml = source if source is not None else _source()
    try:
        inventory = build_inventory(nvml)
    finally:
        close = getattr(nvml, "close", None)
        if callable(close):
            close()
    if inventory.gpu_count == 0:
        return None
    classification = classify(inventory, world_size=tp)
    if classification.interconnect_class is InterconnectClass.CPU_ONLY:
        return None
    name = inventory.gpus[0].name or ""
    try:
        profile, why = profile_for_machine(name, classification.interconnect_class.value)
    except BadInputError:
        return MachinePrior(
            None, f"NVML reports {name or 'an unnamed GPU'}, which no shipped profile knows"
        )
    gpus = inventory.gpu_count
    short = f"; TP {tp} needs more than the {gpus} GPUs here" if tp > gpus else f", TP {tp}"
    return MachinePrior(
        profile, f"prior from this machine's NVML inventory: {profile} ({why}{short})"
    )


def prior_spec(
    prior_hardware: str | None,
    hardware_spec: str | None,
    *,
    launching: bool,
    tp: int,
    default: str,
    notes: list[str],
) -> str:
    """The profile the search's model starts from: --prior-hardware, else --hardware,
    else (when launching here) this machine's, else ``default``; said in ``notes``
    when it came from the machine or the machine could not tell."""
    if prior_hardware or hardware_spec:
        return str(prior_hardware or hardware_spec)
    if not launching:
        return default
    found = machine_prior(tp)
    if found is None:  # no GPU here (a test server, a remote launcher): nothing to read
        return default
    if found.profile is None:
        notes.append(
            f"{found.reason}: the search starts from {default}'s model "
            "(--hardware or --prior-hardware sets it)"
        )
        return default
    notes.append(found.reason)
    return found.profile


__all__ = ["NVML_FROM_ENV", "MachinePrior", "machine_prior", "prior_spec"]
