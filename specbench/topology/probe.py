"""``run_probe``: inventory, measurements, fits and classification, as one ProbeResult.

The result is what the performance model reads back (``load_probe``), so its JSON form is
versioned and every field is checked on load with the file and field named.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from specbench import __version__
from specbench.errors import BadInputError, FileFormatError
from specbench.schema import read_json, require
from specbench.topology.classify import Classification, classify
from specbench.topology.collectives import (
    BACKENDS,
    GPU_BACKENDS,
    AllReduceRow,
    P2PCopyRow,
    TimingPlan,
    measure_allreduce,
    measure_p2p_copy,
)
from specbench.topology.fit import AlphaBetaFit, fit_all
from specbench.topology.inventory import Inventory, build_inventory
from specbench.topology.nvml import NvmlSource, PynvmlSource

KIND = "specbench.probe"

#: 2 KiB .. 256 MiB in steps of 4x: decode all-reduces (batch x hidden x 2 bytes; 3072
#: hidden is 6 KiB per token) sit at the small end, prefill at the large end.
DEFAULT_SIZES = (*(2048 * 4**k for k in range(9)), 256 * 2**20)
QUICK_SIZES = (2 * 2**10, 32 * 2**10, 512 * 2**10, 4 * 2**20)

#: Each rank allocates one message; beyond this a typo (100G) would only exhaust memory.
MAX_SIZE = 4 * 2**30

_UNITS = {
    "": 1,
    "B": 1,
    "K": 2**10,
    "KB": 2**10,
    "KIB": 2**10,
    "M": 2**20,
    "MB": 2**20,
    "MIB": 2**20,
    "G": 2**30,
    "GB": 2**30,
    "GIB": 2**30,
}


def parse_sizes(text: str) -> tuple[int, ...]:
    """'2K,64K,1M' -> byte counts (binary units: K = 1024)."""
    sizes: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", part)
        unit = m.group(2).upper() if m else ""
        if m is None or unit not in _UNITS:
            raise BadInputError(
                f"--sizes: cannot read {part.strip()!r} (expected sizes like 2K,64K,1M)"
            )
        nbytes = int(float(m.group(1)) * _UNITS[unit])
        if nbytes < 4 or nbytes > MAX_SIZE:
            raise BadInputError(f"--sizes: {part.strip()!r} is outside 4 B .. 4 GiB")
        sizes.append(nbytes)
    return tuple(sorted(set(sizes)))


def parse_backends(text: str) -> tuple[str, ...]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names:
        raise BadInputError("--backends: empty list")
    for name in names:
        if name not in BACKENDS:
            raise BadInputError(
                f"--backends: unknown backend {name!r} (choose from {', '.join(BACKENDS)})"
            )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class ProbeOptions:
    world_size: int | None = None
    sizes: tuple[int, ...] | None = None
    backends: tuple[str, ...] | None = None
    iters: int | None = None
    quick: bool = False
    measure: bool = True
    #: Inventory source; None means live NVML.
    source: NvmlSource | None = None


@dataclass(frozen=True)
class ProbeResult:
    host: dict[str, Any]
    inventory: Inventory
    classification: Classification
    allreduce: list[AllReduceRow]
    fits: list[AlphaBetaFit]
    p2p_copy: list[P2PCopyRow] = field(default_factory=list)
    specbench_version: str = __version__

    def fit_for(self, backend: str, mode: str) -> AlphaBetaFit | None:
        return next((f for f in self.fits if f.backend == backend and f.mode == mode), None)

    def to_json(self) -> dict[str, Any]:
        inv = self.inventory
        return {
            "kind": KIND,
            "specbench_version": self.specbench_version,
            "host": self.host,
            "interconnect": self.classification.to_json(),
            "nvml": {
                "available": inv.nvml_available,
                "unavailable_reason": inv.nvml_unavailable_reason,
                "driver_version": inv.driver_version,
                "cuda_driver_version": inv.cuda_driver_version,
                "notes": inv.notes,
            },
            "gpus": [asdict(g) for g in inv.gpus],
            "pairs": [asdict(p) for p in inv.pairs],
            "allreduce": [asdict(r) for r in self.allreduce],
            "fits": [f.to_json() for f in self.fits],
            "p2p_copy": [asdict(r) for r in self.p2p_copy],
        }

    @classmethod
    def from_json(cls, path: object, data: Mapping[str, Any]) -> ProbeResult:
        """Rebuild from a parsed file; FileFormatError names the file and field."""
        kind = require(path, data, "kind", str)
        if kind != KIND:
            raise FileFormatError(path, f"expected {KIND!r}, found {kind!r}", field="kind")
        host = require(path, data, "host", dict)
        inter = require(path, data, "interconnect", dict)
        nvml = require(path, data, "nvml", dict)
        gpus = require(path, data, "gpus", list)
        pairs = require(path, data, "pairs", list)
        ar = require(path, data, "allreduce", list)
        fits = require(path, data, "fits", list)
        copies = data.get("p2p_copy", [])
        for name in ("class", "evidence", "sglang"):
            require(path, inter, name, (str, list, dict))
        try:
            classification = Classification.from_json(inter)
        except (KeyError, ValueError, TypeError) as exc:
            raise FileFormatError(
                path, f"invalid interconnect: {exc}", field="interconnect"
            ) from None

        def rows(name: str, items: list[Any], build: Callable[..., Any]) -> list[Any]:
            out = []
            for k, item in enumerate(items):
                try:
                    out.append(build(**item) if isinstance(item, dict) else build(item))
                except (KeyError, TypeError, ValueError) as exc:
                    raise FileFormatError(
                        path, f"invalid entry: {exc}", field=f"{name}[{k}]"
                    ) from None
            return out

        def fit(**item: Any) -> AlphaBetaFit:
            return AlphaBetaFit.from_json(item)

        inventory = Inventory(
            nvml_available=bool(nvml.get("available")),
            nvml_unavailable_reason=nvml.get("unavailable_reason"),
            driver_version=nvml.get("driver_version"),
            cuda_driver_version=nvml.get("cuda_driver_version"),
            gpus=rows("gpus", gpus, _gpu_from_json),
            pairs=rows("pairs", pairs, _pair_from_json),
            notes=list(nvml.get("notes", [])),
        )
        return cls(
            host=dict(host),
            inventory=inventory,
            classification=classification,
            allreduce=rows("allreduce", ar, AllReduceRow),
            fits=rows("fits", fits, fit),
            p2p_copy=rows("p2p_copy", copies, P2PCopyRow),
            specbench_version=str(data.get("specbench_version", "unknown")),
        )


def _gpu_from_json(**item: Any) -> Any:
    from specbench.topology.inventory import GpuInfo

    return GpuInfo(**item)


def _pair_from_json(**item: Any) -> Any:
    from specbench.topology.inventory import PairInfo

    return PairInfo(**item)


def load_probe(path: Path) -> ProbeResult:
    """Read a ``specbench probe --out`` file for the performance model."""
    return ProbeResult.from_json(path, read_json(Path(path), kind="probe file"))


def host_info(inventory: Inventory) -> dict[str, Any]:
    try:
        import torch

        torch_version: str | None = str(torch.__version__)
        torch_cuda = getattr(torch.version, "cuda", None)
        cuda_devices = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # a broken torch must not stop the inventory
        torch_version, torch_cuda, cuda_devices = None, None, 0
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count() or 1,
        "torch_version": torch_version,
        "torch_cuda_version": torch_cuda,
        "torch_cuda_devices": cuda_devices,
        "driver_version": inventory.driver_version,
        "cuda_driver_version": inventory.cuda_driver_version,
        # NCCL as the machine runs it depends on these (NCCL_P2P_DISABLE, NCCL_P2P_LEVEL...).
        "nccl_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("NCCL_")},
    }


@dataclass(frozen=True)
class Plan:
    """What will be measured, resolved from the options and the machine; validated."""

    backends: tuple[str, ...]
    world_sizes: dict[str, int]
    sizes: tuple[int, ...]
    timing: TimingPlan
    p2p_copy: bool


def plan_measurements(options: ProbeOptions, gpu_count: int, cpu_count: int) -> Plan:
    """Resolve defaults and reject impossible requests before any process starts."""
    if options.backends is None:
        backends: tuple[str, ...] = (
            ("nccl", "nccl-host-staged", "gloo") if gpu_count >= 2 else ("gloo",)
        )
    else:
        backends = options.backends
    if options.world_size is not None and options.world_size < 2:
        raise BadInputError(
            f"--world-size {options.world_size}: an all-reduce needs at least 2 ranks"
        )
    world_sizes: dict[str, int] = {}
    for b in backends:
        ws = options.world_size
        if b in GPU_BACKENDS:
            need = max(2, gpu_count if ws is None else ws)
            if need > gpu_count:
                asked = f"--world-size {ws} with backend {b}" if ws is not None else f"backend {b}"
                raise BadInputError(
                    f"{asked} needs {need} GPUs, but this host has {gpu_count} visible to "
                    "torch (use --backends gloo for a CPU measurement)"
                )
            ws = need
        else:
            ws = 2 if ws is None else ws
            if ws > cpu_count:
                raise BadInputError(
                    f"--world-size {ws} for gloo exceeds this host's {cpu_count} CPUs"
                )
        world_sizes[b] = ws
    sizes = options.sizes or (QUICK_SIZES if options.quick else DEFAULT_SIZES)
    if options.iters is not None and options.iters < 1:
        raise BadInputError(f"--iters {options.iters}: must be at least 1")
    if options.quick:
        timing = TimingPlan(
            warmup=5, min_iters=3, max_iters=options.iters or 50, budget_s=0.15, timeout_s=60.0
        )
    else:
        timing = TimingPlan(
            warmup=3, min_iters=5, max_iters=options.iters or 100, budget_s=0.4, timeout_s=300.0
        )
    if options.iters is not None:
        timing = TimingPlan(
            timing.warmup,
            min(timing.min_iters, options.iters),
            options.iters,
            timing.budget_s,
            timing.timeout_s,
        )
    return Plan(backends, world_sizes, tuple(sizes), timing, gpu_count >= 2)


ProgressFn = Callable[[str, int], Callable[[], None]]


def _per_size(advance: Callable[[], None] | None) -> Callable[[int], None] | None:
    if advance is None:
        return None

    def on_size(_nbytes: int) -> None:
        advance()

    return on_size


def run_probe(options: ProbeOptions, progress: ProgressFn | None = None) -> ProbeResult:
    """Inventory, then (unless options.measure is False) measurements, fits and class.

    ``progress(description, total)`` returns an ``advance()`` callback; the CLI passes
    one that drives a rich progress bar.
    """
    source = options.source if options.source is not None else PynvmlSource()
    try:
        inventory = build_inventory(source)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    host = host_info(inventory)
    # NCCL ranks need CUDA devices torch can see, which NVML alone does not promise
    # (CUDA_VISIBLE_DEVICES, a CPU build of torch, a recorded topology).
    gpu_count = int(host["torch_cuda_devices"])
    if options.source is None and inventory.nvml_available and gpu_count != inventory.gpu_count:
        inventory.notes.append(
            f"NVML sees {inventory.gpu_count} GPUs but torch sees {gpu_count} "
            "(CUDA_VISIBLE_DEVICES?); measurements use torch's devices."
        )
    plan = plan_measurements(options, gpu_count, int(host["cpu_count"]))
    rows: list[AllReduceRow] = []
    copies: list[P2PCopyRow] = []
    if options.measure:
        for backend in plan.backends:
            ws = plan.world_sizes[backend]
            advance = progress(f"all-reduce {backend} x{ws}", len(plan.sizes)) if progress else None
            rows.extend(measure_allreduce(backend, ws, plan.sizes, plan.timing, _per_size(advance)))
        if plan.p2p_copy and options.source is None:
            total = gpu_count * (gpu_count - 1)
            advance = progress("P2P copy", total) if progress else None
            copies = measure_p2p_copy(
                gpu_count,
                bandwidth_bytes=(32 if options.quick else 256) * 2**20,
                iters=5 if options.quick else 20,
                on_pair=advance,
            )
    gpu_ws = max((plan.world_sizes[b] for b in plan.backends if b in GPU_BACKENDS), default=None)
    classification = classify(inventory, rows, world_size=options.world_size or gpu_ws)
    return ProbeResult(
        host=host,
        inventory=inventory,
        classification=classification,
        allreduce=rows,
        fits=fit_all(rows),
        p2p_copy=copies,
    )


def check_writable(path: Path) -> None:
    """Fail before measuring if --out cannot be written, so no measurement is lost."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(f"--out {path}: is a directory")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise BadInputError(f"--out {path}: cannot write in {parent}")


__all__: Sequence[str] = (
    "DEFAULT_SIZES",
    "KIND",
    "QUICK_SIZES",
    "Plan",
    "ProbeOptions",
    "ProbeResult",
    "check_writable",
    "load_probe",
    "parse_backends",
    "parse_sizes",
    "plan_measurements",
    "run_probe",
)
