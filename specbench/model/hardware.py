"""Hardware profiles: GPU roofline numbers plus measured or published collective costs.

A profile is what the cost model needs to price one decode iteration on a machine: HBM
bandwidth and tensor throughput (from datasheets), and alpha-beta fits of all-reduce per
world size (from nccl-tests / p2pBandwidthLatencyTest anchors, or from `specbench probe`
on the user's own machine). Shipped profiles are TOML files under data/hardware; a probe
JSON can stand in for one, so predictions can use the interconnect actually measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, FileFormatError
from specbench.model._data import (
    data_dir,
    get_int,
    get_num,
    get_str,
    get_str_list,
    get_table,
    read_toml,
    shipped_names,
)
from specbench.schema import read_json

#: The profile the sim backend and `predict` use when nothing is given.
DEFAULT_SIM_PROFILE: str = "h200-nvlink"

INTERCONNECT_CLASSES = ("nvlink", "pcie-p2p", "host-staged", "single-gpu", "cpu-only")


@dataclass(frozen=True)
class CollectiveFit:
    """time_us(bytes) = alpha_us + bytes / (bandwidth_gbps * 1e3); algorithm bandwidth."""

    world_size: int
    backend: str
    alpha_us: float
    bandwidth_gbps: float

    def predict_us(self, nbytes: float) -> float:
        return self.alpha_us + nbytes / (self.bandwidth_gbps * 1e3)


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float
    hbm_gbps: float
    hbm_efficiency: float  # achievable fraction of datasheet bandwidth in decode GEMVs
    peak_tflops_fp8: float  # dense, no sparsity
    peak_tflops_bf16: float
    compute_efficiency: float  # achievable fraction of peak in large dense GEMMs
    overhead_scale: float  # per-kernel fixed costs relative to an H100 host
    #: A GEMM over M tokens costs the compute of M + gemm_pad_tokens at full efficiency.
    gemm_pad_tokens: float = 64.0


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    description: str
    sources: tuple[str, ...]
    interconnect_class: str
    tp: int
    gpus: int
    gpu: GpuSpec
    allreduce: tuple[CollectiveFit, ...]  # one per measured world size
    origin: str  # "shipped:<name>" or the probe/profile path

    def fit_for(self, world_size: int) -> CollectiveFit | None:
        for fit in self.allreduce:
            if fit.world_size == world_size:
                return fit
        return None

    @property
    def active_fit(self) -> CollectiveFit | None:
        """The all-reduce fit at this profile's TP size (None on one GPU)."""
        return None if self.tp == 1 else self.fit_for(self.tp)

    def allreduce_us(self, nbytes: float) -> float:
        fit = self.active_fit
        return 0.0 if fit is None else fit.predict_us(nbytes)

    def with_tp(self, tp: int) -> HardwareProfile:
        return _checked_tp(replace(self, tp=tp), self.origin)

    def summary(self) -> dict[str, object]:
        fit = self.active_fit
        return {
            "name": self.name,
            "interconnect_class": self.interconnect_class,
            "tp": self.tp,
            "gpu": self.gpu.name,
            "allreduce_alpha_us": None if fit is None else fit.alpha_us,
            "allreduce_bandwidth_gbps": None if fit is None else fit.bandwidth_gbps,
            "origin": self.origin,
        }


def list_profiles() -> list[str]:
    return shipped_names("hardware")


def _checked_tp(profile: HardwareProfile, where: str) -> HardwareProfile:
    if profile.tp < 1:
        raise BadInputError(f"--tp must be >= 1 (got {profile.tp})")
    if profile.tp > profile.gpus:
        raise BadInputError(
            f"hardware {profile.name!r} has {profile.gpus} GPU(s); tensor parallelism "
            f"{profile.tp} needs {profile.tp}"
        )
    if profile.tp > 1 and profile.fit_for(profile.tp) is None:
        sizes = ", ".join(str(f.world_size) for f in profile.allreduce) or "none"
        raise BadInputError(
            f"{where}: no all-reduce figures for world size {profile.tp} "
            f"(has: {sizes}); choose another --tp"
        )
    return profile


def load_hardware(name_or_path: str, tp: int | None = None) -> HardwareProfile:
    """A shipped profile by name, a profile TOML, or a `specbench probe --out` JSON."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml" and path.is_file()):
        profile = _from_probe(path)
    elif path.suffix.lower() == ".toml":
        profile = _parse_profile(path, read_toml(path), origin=str(path))
    else:
        shipped = data_dir("hardware") / f"{name_or_path}.toml"
        if not shipped.is_file():
            raise BadInputError(
                f"unknown hardware {name_or_path!r}; known: {', '.join(list_profiles())} "
                f"(or a path to a `specbench probe --out` JSON)"
            )
        profile = _parse_profile(shipped, read_toml(shipped), origin=f"shipped:{name_or_path}")
    if tp is not None:
        profile = replace(profile, tp=tp)
    return _checked_tp(profile, profile.origin)


def _parse_gpu(path: object, g: Mapping[str, Any]) -> GpuSpec:
    p = "gpu."
    return GpuSpec(
        name=get_str(path, g, "name", p),
        memory_gib=get_num(path, g, "memory_gib", p),
        hbm_gbps=get_num(path, g, "hbm_gbps", p),
        hbm_efficiency=get_num(path, g, "hbm_efficiency", p),
        peak_tflops_fp8=get_num(path, g, "peak_tflops_fp8", p),
        peak_tflops_bf16=get_num(path, g, "peak_tflops_bf16", p),
        compute_efficiency=get_num(path, g, "compute_efficiency", p),
        overhead_scale=get_num(path, g, "overhead_scale", p, default=1.0),
        gemm_pad_tokens=get_num(path, g, "gemm_pad_tokens", p, default=64.0),
    )


def _parse_fits(path: object, rows: object, field: str) -> tuple[CollectiveFit, ...]:
    if not isinstance(rows, list):
        raise FileFormatError(path, "must be a list of fits", field=field)
    fits = []
    for i, row in enumerate(rows):
        where = f"{field}[{i}]."
        if not isinstance(row, Mapping):
            raise FileFormatError(path, "must be a table/object", field=f"{field}[{i}]")
        alpha = get_num(path, row, "alpha_us", where, positive=False)
        if alpha < 0:
            raise FileFormatError(path, f"must be >= 0 (got {alpha})", field=f"{where}alpha_us")
        fits.append(
            CollectiveFit(
                world_size=get_int(path, row, "world_size", where),
                backend=str(row.get("backend", "nccl")),
                alpha_us=alpha,
                bandwidth_gbps=get_num(path, row, "bandwidth_gbps", where),
            )
        )
    return tuple(fits)


def _parse_profile(path: Path, data: Mapping[str, Any], origin: str) -> HardwareProfile:
    cls = get_str(path, data, "interconnect_class")
    if cls not in INTERCONNECT_CLASSES:
        raise FileFormatError(
            path,
            f"unknown class {cls!r}; one of {', '.join(INTERCONNECT_CLASSES)}",
            field="interconnect_class",
        )
    return HardwareProfile(
        name=get_str(path, data, "name"),
        description=get_str(path, data, "description"),
        sources=get_str_list(path, data, "sources"),
        interconnect_class=cls,
        tp=get_int(path, data, "default_tp"),
        gpus=get_int(path, data, "gpus"),
        gpu=_parse_gpu(path, get_table(path, data, "gpu")),
        allreduce=_parse_fits(path, data.get("allreduce", []), "allreduce"),
        origin=origin,
    )


# GPU name fragments (as NVML reports them) -> shipped profile whose [gpu] table applies.
_GPU_MATCH: Sequence[tuple[tuple[str, ...], str]] = (
    (("H200",), "h200-nvlink"),
    (("H100", "PCIE"), "h100-pcie-p2p"),
    (("H100",), "h100-nvlink"),
    (("B200",), "b200-nvlink"),
    (("A100", "PCIE"), "a100-pcie-p2p"),
    (("A100",), "a100-sxm-nvlink"),
    (("L40S",), "l40s-pcie-host-staged"),
    (("5090",), "rtx5090-pcie-host-staged"),
    (("4090",), "rtx4090-pcie-host-staged"),
    (("3090",), "rtx3090-pcie-host-staged"),
)


def _gpu_for_name(gpu_name: str) -> tuple[GpuSpec, str]:
    upper = gpu_name.upper()
    for fragments, profile in _GPU_MATCH:
        if all(f in upper for f in fragments):
            shipped = data_dir("hardware") / f"{profile}.toml"
            return _parse_gpu(shipped, get_table(shipped, read_toml(shipped), "gpu")), profile
    raise BadInputError(
        f"no datasheet figures for GPU {gpu_name!r}; known: B200, H200, H100 (SXM/PCIe), "
        f"A100 (SXM/PCIe), L40S, RTX 5090, RTX 4090, RTX 3090 — copy a profile TOML from `specbench predict --list` and edit its [gpu]"
    )


def profile_for_machine(gpu_name: str, interconnect_class: str) -> tuple[str, str]:
    """The shipped profile that describes a machine NVML reports, and why that one.

    The GPU (as NVML names it) picks the datasheet figures, the interconnect class the
    collective costs: the profile with both is taken; one GPU needs no collective, so the
    GPU's own profile serves; where no shipped profile has this GPU on this class, the
    GPU's own profile is taken and the reason says the collectives are another class's.
    An unknown GPU is a BadInputError naming the GPUs that are known.
    """
    _, base = _gpu_for_name(gpu_name)
    gpu = load_hardware(base).gpu.name
    same_gpu = [name for name in list_profiles() if load_hardware(name).gpu.name == gpu]
    exact = [n for n in same_gpu if load_hardware(n).interconnect_class == interconnect_class]
    if exact:
        return exact[0], f"{gpu_name} on {interconnect_class}"
    if interconnect_class == "single-gpu":
        return base, f"one {gpu_name}: no all-reduce to price"
    return base, (
        f"{gpu_name} on {interconnect_class}: no shipped profile has that class for this GPU, "
        f"so {base}'s collectives stand in (a `specbench probe` measures them)"
    )


#: Preference among a probe's all-reduce fits for one world size: what SGLang runs. NCCL as
#: the machine configures it comes first; the forced host-staged run is a what-if, and gloo
#: (CPU tensors) is never on a GPU decode path, so neither may price the model's collectives
#: when the default was measured.
_MODE_PREFERENCE = {"default": 0, "host-staged": 1}


def _runtime_fits(fits_raw: object, fits: tuple[CollectiveFit, ...]) -> dict[int, CollectiveFit]:
    """Per world size, the all-reduce fit of the transport SGLang would really use."""
    raw_rows = fits_raw if isinstance(fits_raw, list) else []
    chosen: dict[int, tuple[int, CollectiveFit]] = {}
    for raw, fit in zip(raw_rows, fits, strict=True):
        mode = str(raw.get("mode", "default")) if isinstance(raw, Mapping) else "default"
        if fit.backend == "gloo" or "gather" in mode.lower():
            continue
        rank = _MODE_PREFERENCE.get(mode, 2)
        current = chosen.get(fit.world_size)
        if current is None or rank < current[0]:
            chosen[fit.world_size] = (rank, fit)
    return {size: fit for size, (_, fit) in chosen.items()}


def _from_probe(path: Path) -> HardwareProfile:
    """Build a profile from a probe file: measured interconnect, datasheet GPU."""
    data = read_json(path, kind="probe file")
    inter = data.get("interconnect")
    cls = inter.get("class") if isinstance(inter, Mapping) else None
    if not isinstance(cls, str):
        raise FileFormatError(path, "missing or not a string", field="interconnect.class")
    if cls not in INTERCONNECT_CLASSES:
        raise FileFormatError(
            path,
            f"unknown class {cls!r}; one of {', '.join(INTERCONNECT_CLASSES)}",
            field="interconnect.class",
        )
    gpus_raw = data.get("gpus")
    if gpus_raw is None and isinstance(data.get("inventory"), Mapping):
        gpus_raw = data["inventory"].get("gpus")
    if isinstance(gpus_raw, list):
        gpu_list = gpus_raw
    else:
        raise FileFormatError(path, "missing or not a list", field="gpus")
    if not gpu_list:
        raise FileFormatError(
            path,
            "no GPUs in this probe (taken on a host without GPUs), so there is nothing to "
            f"price; pass a shipped profile instead: --hardware {DEFAULT_SIM_PROFILE} "
            f"(known: {', '.join(list_profiles())}; `specbench predict --list` shows them)",
            field="gpus",
        )
    first = gpu_list[0]
    name = first.get("name") if isinstance(first, Mapping) else None
    if not isinstance(name, str) or not name:
        raise FileFormatError(path, "missing or not a string", field="gpus[0].name")
    gpu, base = _gpu_for_name(name)
    fits_raw = data.get("fits", [])
    fits = _parse_fits(path, fits_raw, "fits")
    best = _runtime_fits(fits_raw, fits)
    tp = max([1, *sorted(best)])
    return HardwareProfile(
        name=f"probe:{path.name}",
        description=f"measured by specbench probe ({len(gpu_list)} x {name}, {cls}); "
        f"GPU roofline figures from the {base} profile",
        sources=(str(path),),
        interconnect_class=cls,
        tp=tp,
        gpus=len(gpu_list),
        gpu=gpu,
        allreduce=tuple(best[k] for k in sorted(best)),
        origin=str(path),
    )
