"""What the machine is: NVML inventory, measured all-reduce curves, fits and class.

``run_probe`` writes what the performance model reads back with ``load_probe``.
"""

from __future__ import annotations

from specbench.topology.classify import (
    Classification,
    InterconnectClass,
    SglangVerdict,
    classify,
)
from specbench.topology.collectives import AllReduceRow, P2PCopyRow
from specbench.topology.fit import AlphaBetaFit, fit_all, fit_alpha_beta
from specbench.topology.inventory import GpuInfo, Inventory, PairInfo, build_inventory
from specbench.topology.nvml import NvmlSource, PynvmlSource, RecordedNvml, record_source
from specbench.topology.probe import (
    ProbeOptions,
    ProbeResult,
    load_probe,
    parse_backends,
    parse_sizes,
    run_probe,
)

__all__ = [
    "AllReduceRow",
    "AlphaBetaFit",
    "Classification",
    "GpuInfo",
    "InterconnectClass",
    "Inventory",
    "NvmlSource",
    "P2PCopyRow",
    "PairInfo",
    "ProbeOptions",
    "ProbeResult",
    "PynvmlSource",
    "RecordedNvml",
    "SglangVerdict",
    "build_inventory",
    "classify",
    "fit_all",
    "fit_alpha_beta",
    "load_probe",
    "parse_backends",
    "parse_sizes",
    "record_source",
    "run_probe",
]
