"""Interconnect class and SGLang's all-reduce choice, as a pure function of the evidence.

Kept free of I/O so the same rules run on recorded topologies in tests and on a live box.
The SGLang rules follow sgl-project/sglang python/sglang/srt/distributed/device_communicators/
custom_all_reduce.py: custom all-reduce only for world size 2, 4, 6 or 8,
only if (world size 2 or every pair NVLink) and P2P really works; otherwise NCCL, whose
transport is P2P up to a PCIe switch (PXB) with NVML read+write OK, else SHM via host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from specbench.topology.collectives import AllReduceRow
from specbench.topology.inventory import Inventory, PairInfo

CUSTOM_AR_WORLD_SIZES = (2, 4, 6, 8)


class InterconnectClass(str, Enum):
    NVLINK = "nvlink"
    PCIE_P2P = "pcie-p2p"
    HOST_STAGED = "host-staged"
    SINGLE_GPU = "single-gpu"
    CPU_ONLY = "cpu-only"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SglangVerdict:
    custom_all_reduce: bool
    reason: str
    #: NCCL's transport between the TP ranks: "P2P/NVLink", "P2P/PCIe", "SHM",
    #: "P2P+SHM" (mixed), or "none" (no GPU collective).
    nccl_transport: str


@dataclass(frozen=True)
class Classification:
    interconnect_class: InterconnectClass
    evidence: list[str]
    sglang: SglangVerdict
    world_size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "class": self.interconnect_class.value,
            "evidence": list(self.evidence),
            "sglang": asdict(self.sglang),
            "world_size": self.world_size,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Classification:
        s = data["sglang"]
        return cls(
            interconnect_class=InterconnectClass(data["class"]),
            evidence=[str(e) for e in data["evidence"]],
            sglang=SglangVerdict(
                bool(s["custom_all_reduce"]), str(s["reason"]), str(s["nccl_transport"])
            ),
            world_size=int(data.get("world_size", 0)),
        )


def _pair_text(p: PairInfo) -> str:
    level = p.topology_name or "unknown level"
    caps = ", ".join(f"{k} {v or 'n/a'}" for k, v in p.p2p.items() if k != "pci")
    torch = {True: "yes", False: "no", None: "unknown"}[p.torch_can_access_peer]
    return f"GPU{p.a}-GPU{p.b}: common ancestor {level}; P2P {caps}; torch peer access {torch}"


def _smallest(rows: Sequence[AllReduceRow], backend: str, mode: str) -> AllReduceRow | None:
    series = [r for r in rows if r.backend == backend and r.mode == mode]
    return min(series, key=lambda r: r.bytes) if series else None


def _largest(rows: Sequence[AllReduceRow], backend: str, mode: str) -> AllReduceRow | None:
    series = [r for r in rows if r.backend == backend and r.mode == mode]
    return max(series, key=lambda r: r.bytes) if series else None


def _measurement_evidence(rows: Sequence[AllReduceRow]) -> list[str]:
    lines: list[str] = []
    for backend, mode, label in (
        ("nccl", "default", "NCCL (as configured)"),
        ("nccl", "host-staged", "NCCL with NCCL_P2P_DISABLE=1"),
        ("gloo", "cpu", "gloo on CPU tensors"),
    ):
        small, big = _smallest(rows, backend, mode), _largest(rows, backend, mode)
        if small is None or big is None:
            continue
        lines.append(
            f"{label}, {small.world_size} ranks: {small.latency_us:.1f} us at {small.bytes} B, "
            f"busbw {big.busbw_gbps:.2f} GB/s at {big.bytes} B (measured)."
        )
    nccl, staged = _smallest(rows, "nccl", "default"), _smallest(rows, "nccl", "host-staged")
    if nccl and staged and nccl.bytes == staged.bytes:
        ratio = staged.latency_us / nccl.latency_us
        if ratio < 1.2:
            lines.append(
                f"NCCL's small-message latency is within 20% of the host-staged run "
                f"({nccl.latency_us:.1f} vs {staged.latency_us:.1f} us): NCCL gains little "
                "from P2P on this box."
            )
        else:
            lines.append(
                f"Host staging makes a {staged.bytes} B all-reduce {ratio:.1f}x slower "
                f"({staged.latency_us:.1f} vs {nccl.latency_us:.1f} us)."
            )
    return lines


def _custom_all_reduce(ws: int, pairs: Sequence[PairInfo]) -> tuple[bool, str]:
    """Whether SGLang's custom all-reduce runs over these pairs, and why (its own rule:
    world size 2/4/6/8, P2P on every pair, NVLink on every pair beyond two GPUs)."""
    p2p_pairs = sum(1 for p in pairs if p.p2p_works)
    all_nvlink = all(p.nvlink for p in pairs)
    if ws not in CUSTOM_AR_WORLD_SIZES:
        return False, f"world size {ws} is not one of 2, 4, 6, 8"
    if p2p_pairs != len(pairs):
        return False, f"GPU P2P does not work on {len(pairs) - p2p_pairs} of {len(pairs)} pairs"
    if ws != 2 and not all_nvlink:
        return False, f"world size {ws} > 2 needs NVLink between every pair"
    if all_nvlink:
        return True, f"world size {ws}, every pair NVLink, P2P works"
    return True, "world size 2 with working P2P (PCIe allowed at 2 GPUs)"


def classify(
    inventory: Inventory,
    allreduce_rows: Sequence[AllReduceRow] = (),
    world_size: int | None = None,
) -> Classification:
    """Class, evidence sentences and SGLang's all-reduce choice for TP over GPUs 0..ws-1."""
    measured = _measurement_evidence(allreduce_rows)
    n_gpus = inventory.gpu_count
    if n_gpus == 0:
        why = inventory.nvml_unavailable_reason or "NVML reports no GPUs"
        return Classification(
            InterconnectClass.CPU_ONLY,
            [f"No NVIDIA GPU found: {why}.", *measured],
            SglangVerdict(False, "no GPU: SGLang cannot serve on this host", "none"),
            0,
        )
    ws = n_gpus if world_size is None else min(world_size, n_gpus)
    names = sorted({g.name or "unknown GPU" for g in inventory.gpus[:ws]})
    if ws <= 1:
        return Classification(
            InterconnectClass.SINGLE_GPU,
            [
                f"{n_gpus} GPU ({', '.join(names)}): tensor parallelism has no all-reduce.",
                *measured,
            ],
            SglangVerdict(False, "world size 1: no all-reduce to run", "none"),
            ws,
        )
    pairs = [p for p in inventory.pairs if p.a < ws and p.b < ws]
    evidence = [f"{ws} of {n_gpus} GPUs considered ({', '.join(names)})."]
    nvlink_pairs = [p for p in pairs if p.nvlink]
    p2p_pairs = [p for p in pairs if p.p2p_works]
    nccl_p2p = [p for p in pairs if p.nccl_uses_p2p]
    links = sorted({g.nvlinks_up for g in inventory.gpus[:ws]})
    versions = sorted({g.nvlink_version for g in inventory.gpus[:ws] if g.nvlink_version})
    if any(links):
        evidence.append(
            f"NVLink links up per GPU: {'/'.join(map(str, links))}"
            + (f" (NVML NVLink version code {'/'.join(map(str, versions))})." if versions else ".")
        )
    evidence.append(
        f"{len(nvlink_pairs)} of {len(pairs)} pairs report NVLink; {len(p2p_pairs)} of "
        f"{len(pairs)} have NVML P2P read+write OK with torch peer access not denied."
    )
    # Cite the pairs that break the rule (or one representative pair when none does).
    bad = [p for p in pairs if not p.nccl_uses_p2p]
    for p in bad[:3] if bad else pairs[:1]:
        evidence.append(_pair_text(p) + ".")
    if len(bad) > 3:
        evidence.append(f"... and {len(bad) - 3} more pairs without P2P.")

    if pairs and len(nvlink_pairs) == len(pairs) and len(p2p_pairs) == len(pairs):
        cls, transport = InterconnectClass.NVLINK, "P2P/NVLink"
    elif pairs and len(nccl_p2p) == len(pairs):
        cls, transport = InterconnectClass.PCIE_P2P, "P2P/PCIe"
    else:
        cls = InterconnectClass.HOST_STAGED
        transport = "P2P+SHM" if nccl_p2p else "SHM"
        if nccl_p2p:
            evidence.append(
                f"NCCL uses P2P on {len(nccl_p2p)} pairs and SHM through host memory on "
                f"{len(bad)}: the ring's host-staged hops set the all-reduce time."
            )
        else:
            evidence.append(
                "No pair qualifies for NCCL P2P: every all-reduce is staged through host memory."
            )

    verdict = _custom_all_reduce(ws, pairs)
    reason = verdict[1] + ("" if verdict[0] else f"; SGLang falls back to NCCL over {transport}")
    return Classification(
        cls,
        evidence + measured,
        SglangVerdict(verdict[0], reason, transport),
        ws,
    )
