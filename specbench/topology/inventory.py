"""The machine as NVML describes it: per GPU and per GPU pair, as plain dataclasses.

Every field that NVML could not answer is ``None`` and the reason lands in ``notes``, so a
partial inventory (a PCIe card without NVLink queries, a VM without affinity) still
classifies instead of failing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from specbench.topology.nvml import (
    P2P_CAPS,
    P2P_STATUS_NAMES,
    TOPOLOGY_LEVELS,
    TOPOLOGY_SMI,
    NvmlQueryError,
    NvmlSource,
)

#: The P2P capabilities NVML reports per pair (PCI is recorded too when the driver has it).
P2P_REPORTED = ("read", "write", "nvlink", "atomics")

#: NCCL's default P2P_LEVEL is PXB: P2P over PCIe only below a host bridge.
NCCL_P2P_MAX_LEVEL = 20


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str | None
    bus_id: str | None
    memory_total_bytes: int | None
    pcie_curr_gen: int | None
    pcie_max_gen: int | None
    pcie_curr_width: int | None
    pcie_max_width: int | None
    numa_node: int | None
    cpu_affinity: list[int] | None
    nvlinks_up: int
    nvlink_version: int | None
    nvlink_remote_bus_ids: list[str] = field(default_factory=list)

    @property
    def memory_gib(self) -> float | None:
        return None if self.memory_total_bytes is None else self.memory_total_bytes / 2**30


@dataclass(frozen=True)
class PairInfo:
    a: int
    b: int
    #: capability name -> status name ("OK", "IOH_TOPOLOGY_NOT_SUPPORTED", ...) or None.
    p2p: dict[str, str | None]
    topology_level: int | None
    topology_name: str | None
    torch_can_access_peer: bool | None
    #: Active NVLink links from a to b (counted by remote bus id), None if unknown.
    nvlinks_between: int | None

    def p2p_ok(self, cap: str) -> bool:
        return self.p2p.get(cap) == "OK"

    @property
    def nvlink(self) -> bool:
        """NVML says this pair talks over NVLink (directly or through NVSwitch)."""
        return self.p2p_ok("nvlink") or bool(self.nvlinks_between)

    @property
    def p2p_works(self) -> bool:
        """P2P read and write are OK and torch (when it could tell) agrees."""
        return (
            self.p2p_ok("read") and self.p2p_ok("write") and self.torch_can_access_peer is not False
        )

    @property
    def nccl_uses_p2p(self) -> bool:
        """Whether NCCL's default transport for this pair is P2P (else SHM through the host)."""
        if not self.p2p_works:
            return False
        if self.nvlink:
            return True
        return self.topology_level is not None and self.topology_level <= NCCL_P2P_MAX_LEVEL

    @property
    def topology_smi(self) -> str:
        if self.nvlink:
            return "NV"
        if self.topology_level is None:
            return "?"
        return TOPOLOGY_SMI.get(self.topology_level, str(self.topology_level))


@dataclass(frozen=True)
class Inventory:
    nvml_available: bool
    #: Why NVML is absent; None when it works.
    nvml_unavailable_reason: str | None
    driver_version: str | None
    cuda_driver_version: str | None
    gpus: list[GpuInfo]
    pairs: list[PairInfo]
    notes: list[str] = field(default_factory=list)

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    def pair(self, a: int, b: int) -> PairInfo | None:
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inventory:
        return cls(
            nvml_available=bool(data["nvml_available"]),
            nvml_unavailable_reason=data.get("nvml_unavailable_reason"),
            driver_version=data.get("driver_version"),
            cuda_driver_version=data.get("cuda_driver_version"),
            gpus=[GpuInfo(**g) for g in data.get("gpus", [])],
            pairs=[PairInfo(**p) for p in data.get("pairs", [])],
            notes=list(data.get("notes", [])),
        )


def _cuda_version_text(v: int | None) -> str | None:
    # NVML encodes CUDA 12.4 as 12040.
    return None if v is None else f"{v // 1000}.{(v % 1000) // 10}"


def build_inventory(source: NvmlSource) -> Inventory:
    """Query every field, turning each failed query into None plus a note."""
    reason = source.unavailable_reason()
    if reason is not None:
        return Inventory(False, reason, None, None, [], [], [reason])
    notes: list[str] = []

    def ask(what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except NvmlQueryError as exc:
            notes.append(f"{what}: {exc}")
            return None

    n = source.device_count()
    gpus: list[GpuInfo] = []
    link_targets: list[list[str]] = []
    for i in range(n):
        pcie = source.pcie(i)
        links = ask(f"GPU{i} NVLink", source.nvlinks, i) or []
        up = [link for link in links if link.active]
        versions = sorted({link.version for link in up if link.version is not None})
        remotes = [link.remote_bus_id for link in up if link.remote_bus_id]
        link_targets.append(remotes)
        gpus.append(
            GpuInfo(
                index=i,
                name=ask(f"GPU{i} name", source.name, i),
                bus_id=ask(f"GPU{i} bus id", source.bus_id, i),
                memory_total_bytes=ask(f"GPU{i} memory", source.memory_total_bytes, i),
                pcie_curr_gen=pcie.curr_gen,
                pcie_max_gen=pcie.max_gen,
                pcie_curr_width=pcie.curr_width,
                pcie_max_width=pcie.max_width,
                numa_node=ask(f"GPU{i} NUMA node", source.numa_node, i),
                cpu_affinity=ask(f"GPU{i} CPU affinity", source.cpu_affinity, i),
                nvlinks_up=len(up),
                nvlink_version=versions[-1] if versions else None,
                nvlink_remote_bus_ids=remotes,
            )
        )
    bus_ids = {g.bus_id.lower(): g.index for g in gpus if g.bus_id}
    pairs: list[PairInfo] = []
    for a in range(n):
        for b in range(a + 1, n):
            status: dict[str, str | None] = {}
            for cap in P2P_CAPS:
                code = ask(f"P2P {cap} {a}-{b}", source.p2p_status, a, b, cap)
                status[cap] = None if code is None else P2P_STATUS_NAMES.get(code, str(code))
            level = ask(f"topology {a}-{b}", source.topology_level, a, b)
            between: int | None = None
            if link_targets[a] and gpus[b].bus_id:
                # Direct NVLink (no NVSwitch): the remote end is GPU b itself.
                between = sum(1 for r in link_targets[a] if bus_ids.get(r.lower()) == b)
            pairs.append(
                PairInfo(
                    a=a,
                    b=b,
                    p2p=status,
                    topology_level=level,
                    topology_name=None if level is None else TOPOLOGY_LEVELS.get(level, str(level)),
                    torch_can_access_peer=source.torch_can_access_peer(a, b),
                    nvlinks_between=between,
                )
            )
    return Inventory(
        nvml_available=True,
        nvml_unavailable_reason=None,
        driver_version=source.driver_version(),
        cuda_driver_version=_cuda_version_text(source.cuda_driver_version()),
        gpus=gpus,
        pairs=pairs,
        notes=notes,
    )
