"""Where the inventory comes from: live NVML, or a recorded topology.

The inventory code talks to a small ``NvmlSource`` protocol instead of ``pynvml`` so the
classification rules can be tested on recorded 8-GPU NVSwitch, split-PCIe and consumer
boxes from a laptop with no driver. Every query may raise ``NvmlQueryError``; callers
record the field as unavailable rather than crash, because NVML support varies by GPU,
driver and container (NVLink queries fail on PCIe cards, affinity fails in some VMs).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from specbench.errors import FileFormatError

#: nvmlDeviceGetP2PStatus capability indexes. Plain ints on purpose: in current
#: nvidia-ml-py releases ``NVML_P2P_CAPS_INDEX_READ`` is the tuple ``(0,)`` (a stray
#: trailing comma), which ctypes rejects.
P2P_CAPS: dict[str, int] = {"read": 0, "write": 1, "nvlink": 2, "atomics": 3, "pci": 4}

#: nvmlDeviceGetP2PStatus results.
P2P_STATUS_NAMES: dict[int, str] = {
    0: "OK",
    1: "CHIPSET_NOT_SUPPORTED",
    2: "GPU_NOT_SUPPORTED",
    3: "IOH_TOPOLOGY_NOT_SUPPORTED",
    4: "DISABLED_BY_REGKEY",
    5: "NOT_SUPPORTED",
    6: "UNKNOWN",
}

#: nvmlDeviceGetTopologyCommonAncestor levels, with the nvidia-smi topo -m spelling.
TOPOLOGY_LEVELS: dict[int, str] = {
    0: "INTERNAL",
    10: "SINGLE",
    20: "MULTIPLE",
    30: "HOSTBRIDGE",
    40: "NODE",
    50: "SYSTEM",
}
TOPOLOGY_SMI: dict[int, str] = {0: "X", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}

#: Highest link index probed when pynvml does not say (NVML_NVLINK_MAX_LINKS varies by
#: release: 12 on older ones, 18 for H100, 36 today).
_FALLBACK_MAX_LINKS = 18


class NvmlQueryError(Exception):
    """One NVML query failed; the message says why (e.g. 'Not Supported')."""


@dataclass(frozen=True)
class PcieLink:
    curr_gen: int | None
    max_gen: int | None
    curr_width: int | None
    max_width: int | None


@dataclass(frozen=True)
class NvLinkInfo:
    link: int
    active: bool
    version: int | None
    remote_bus_id: str | None


class NvmlSource(Protocol):
    """The NVML (and torch peer-access) queries the inventory needs, by GPU index."""

    def unavailable_reason(self) -> str | None:
        """None when NVML works, else why it does not (no driver, no library)."""

    def driver_version(self) -> str | None: ...
    def cuda_driver_version(self) -> int | None: ...
    def device_count(self) -> int: ...
    def name(self, i: int) -> str: ...
    def bus_id(self, i: int) -> str: ...
    def memory_total_bytes(self, i: int) -> int: ...
    def pcie(self, i: int) -> PcieLink: ...
    def numa_node(self, i: int) -> int | None: ...
    def cpu_affinity(self, i: int) -> list[int]: ...
    def nvlinks(self, i: int) -> list[NvLinkInfo]: ...
    def p2p_status(self, i: int, j: int, cap: str) -> int: ...
    def topology_level(self, i: int, j: int) -> int: ...
    def torch_can_access_peer(self, i: int, j: int) -> bool | None:
        """``torch.cuda.can_device_access_peer``; None when torch has no CUDA."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PynvmlSource:
    """The live source: nvidia-ml-py (module ``pynvml``), every call guarded."""

    def __init__(self) -> None:
        self._reason: str | None = None
        self._handles: list[Any] = []
        try:
            import pynvml
        except ImportError as exc:  # pragma: no cover - a declared dependency
            self._reason = f"nvidia-ml-py is not installed ({exc})"
            return
        self._nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            self._reason = f"NVML unavailable: {_text(exc)} (no NVIDIA driver on this host?)"
            return
        except OSError as exc:  # pragma: no cover - broken library install
            self._reason = f"NVML unavailable: {exc}"
            return
        try:
            count = int(pynvml.nvmlDeviceGetCount())
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except pynvml.NVMLError as exc:
            self._reason = f"NVML cannot list devices: {_text(exc)}"

    def close(self) -> None:
        if self._reason is None:
            with contextlib.suppress(self._nv.NVMLError):
                self._nv.nvmlShutdown()

    def _call(self, fn_name: str, *args: Any) -> Any:
        if self._reason is not None:
            raise NvmlQueryError(self._reason)
        fn = getattr(self._nv, fn_name, None)
        if fn is None:
            raise NvmlQueryError(f"{fn_name} is missing from this nvidia-ml-py")
        try:
            return fn(*args)
        except self._nv.NVMLError as exc:
            raise NvmlQueryError(f"{fn_name}: {_text(exc)}") from None

    def _handle(self, i: int) -> Any:
        if self._reason is not None:
            raise NvmlQueryError(self._reason)
        if not 0 <= i < len(self._handles):
            raise NvmlQueryError(f"no GPU {i} (NVML lists {len(self._handles)})")
        return self._handles[i]

    def unavailable_reason(self) -> str | None:
        return self._reason

    def driver_version(self) -> str | None:
        try:
            return _text(self._call("nvmlSystemGetDriverVersion"))
        except NvmlQueryError:
            return None

    def cuda_driver_version(self) -> int | None:
        try:
            return int(self._call("nvmlSystemGetCudaDriverVersion"))
        except NvmlQueryError:
            return None

    def device_count(self) -> int:
        return len(self._handles)

    def name(self, i: int) -> str:
        return _text(self._call("nvmlDeviceGetName", self._handle(i)))

    def bus_id(self, i: int) -> str:
        return _text(self._call("nvmlDeviceGetPciInfo", self._handle(i)).busId)

    def memory_total_bytes(self, i: int) -> int:
        return int(self._call("nvmlDeviceGetMemoryInfo", self._handle(i)).total)

    def pcie(self, i: int) -> PcieLink:
        h = self._handle(i)

        def get(fn_name: str) -> int | None:
            try:
                return int(self._call(fn_name, h))
            except NvmlQueryError:
                return None

        return PcieLink(
            curr_gen=get("nvmlDeviceGetCurrPcieLinkGeneration"),
            max_gen=get("nvmlDeviceGetMaxPcieLinkGeneration"),
            curr_width=get("nvmlDeviceGetCurrPcieLinkWidth"),
            max_width=get("nvmlDeviceGetMaxPcieLinkWidth"),
        )

    def numa_node(self, i: int) -> int | None:
        node = int(self._call("nvmlDeviceGetNumaNodeId", self._handle(i)))
        return node if node >= 0 else None

    def cpu_affinity(self, i: int) -> list[int]:
        words = max(1, ((os.cpu_count() or 1) + 63) // 64)
        mask = self._call("nvmlDeviceGetCpuAffinity", self._handle(i), words)
        cpus: list[int] = []
        for w, word in enumerate(mask):
            cpus.extend(w * 64 + b for b in range(64) if int(word) >> b & 1)
        return cpus

    def nvlinks(self, i: int) -> list[NvLinkInfo]:
        h = self._handle(i)
        max_links = getattr(self._nv, "NVML_NVLINK_MAX_LINKS", _FALLBACK_MAX_LINKS)
        links: list[NvLinkInfo] = []
        for link in range(int(max_links)):
            try:
                active = bool(self._call("nvmlDeviceGetNvLinkState", h, link))
            except NvmlQueryError:
                # Not Supported / Invalid Argument past the last link, or a PCIe card.
                continue
            version: int | None = None
            remote: str | None = None
            if active:
                try:
                    version = int(self._call("nvmlDeviceGetNvLinkVersion", h, link))
                except NvmlQueryError:
                    version = None
                try:
                    remote = _text(self._call("nvmlDeviceGetNvLinkRemotePciInfo", h, link).busId)
                except NvmlQueryError:
                    remote = None
            links.append(NvLinkInfo(link, active, version, remote))
        return links

    def p2p_status(self, i: int, j: int, cap: str) -> int:
        return int(
            self._call("nvmlDeviceGetP2PStatus", self._handle(i), self._handle(j), P2P_CAPS[cap])
        )

    def topology_level(self, i: int, j: int) -> int:
        return int(
            self._call("nvmlDeviceGetTopologyCommonAncestor", self._handle(i), self._handle(j))
        )

    def _torch_index(self, i: int) -> int | None:
        """CUDA's index for NVML GPU i, matched by PCI address.

        NVML counts in PCI order; CUDA counts fastest-first unless CUDA_DEVICE_ORDER is
        PCI_BUS_ID, and CUDA_VISIBLE_DEVICES hides devices, so equal indexes can differ.
        """
        import torch

        try:
            domain, bus, rest = self.bus_id(i).split(":")
            address = (int(domain, 16), int(bus, 16), int(rest.split(".")[0], 16))
        except (NvmlQueryError, ValueError):
            return i if i < torch.cuda.device_count() else None
        for k in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(k)
            found = (
                getattr(props, "pci_domain_id", None),
                getattr(props, "pci_bus_id", None),
                getattr(props, "pci_device_id", None),
            )
            if found == address:
                return k
        return None

    def torch_can_access_peer(self, i: int, j: int) -> bool | None:
        try:
            import torch

            if not torch.cuda.is_available():
                return None
            a, b = self._torch_index(i), self._torch_index(j)
            if a is None or b is None:
                return None
            return bool(torch.cuda.can_device_access_peer(a, b))
        except Exception:  # torch raises RuntimeError subclasses on driver trouble
            return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_optional(origin: str, where: str, obj: Mapping[str, Any], key: str, kind: type) -> None:
    """A recorded field is absent/null (a failed query) or of the type NVML returns."""
    value = obj.get(key)
    ok = value is None or (_is_int(value) if kind is int else isinstance(value, kind))
    if not ok:
        raise FileFormatError(
            origin, f"expected {kind.__name__} or null, got {value!r}", field=f"{where}.{key}"
        )


def _check_recorded_gpu(origin: str, where: str, gpu: Mapping[str, Any]) -> None:
    """Reject a hand-edited fixture up front, naming the field, instead of crashing later."""
    for key, kind in (("name", str), ("bus_id", str), ("memory_total_bytes", int)):
        _check_optional(origin, where, gpu, key, kind)
    _check_optional(origin, where, gpu, "numa_node", int)
    pcie = gpu.get("pcie")
    if pcie is not None:
        if not isinstance(pcie, dict):
            raise FileFormatError(origin, "expected an object", field=f"{where}.pcie")
        for key in ("curr_gen", "max_gen", "curr_width", "max_width"):
            _check_optional(origin, f"{where}.pcie", pcie, key, int)
    affinity = gpu.get("cpu_affinity")
    if affinity is not None and (
        not isinstance(affinity, list) or not all(_is_int(c) for c in affinity)
    ):
        raise FileFormatError(origin, "expected a list of CPU ids", field=f"{where}.cpu_affinity")
    links = gpu.get("nvlinks", [])
    if not isinstance(links, list):
        raise FileFormatError(origin, "expected a list of objects", field=f"{where}.nvlinks")
    for k, link in enumerate(links):
        at = f"{where}.nvlinks[{k}]"
        if (
            not isinstance(link, dict)
            or not _is_int(link.get("link"))
            or not isinstance(link.get("active"), bool)
        ):
            raise FileFormatError(origin, "needs integer 'link' and boolean 'active'", field=at)
        _check_optional(origin, at, link, "version", int)
        _check_optional(origin, at, link, "remote_bus_id", str)


class RecordedNvml:
    """A topology recorded as JSON (see ``tests/data/topologies``); queries never touch a GPU.

    Format: ``{"unavailable": str|null, "driver_version", "cuda_driver_version", "gpus":
    [{name, bus_id, memory_total_bytes, pcie{curr_gen,max_gen,curr_width,max_width},
    numa_node, cpu_affinity [int], nvlinks [{link, active, version, remote_bus_id}]}],
    "pairs": [{a, b, p2p {read, write, nvlink, atomics, pci}, topology_level,
    torch_can_access_peer}]}``. A missing field reads as a failed query, like the live source.
    Pairs are symmetric unless both orders are recorded.
    """

    def __init__(self, data: Mapping[str, Any], origin: str = "<recorded>") -> None:
        self.origin = origin
        self._data = data
        gpus = data.get("gpus", [])
        if not isinstance(gpus, list) or not all(isinstance(g, dict) for g in gpus):
            raise FileFormatError(origin, "expected a list of objects", field="gpus")
        for i, gpu in enumerate(gpus):
            _check_recorded_gpu(origin, f"gpus[{i}]", gpu)
        self._gpus: list[dict[str, Any]] = gpus
        self._pairs: dict[tuple[int, int], dict[str, Any]] = {}
        pairs = data.get("pairs", [])
        if not isinstance(pairs, list):
            raise FileFormatError(origin, "expected a list of objects", field="pairs")
        for k, pair in enumerate(pairs):
            where = f"pairs[{k}]"
            if not isinstance(pair, dict):
                raise FileFormatError(origin, "expected an object", field=where)
            a: Any = pair.get("a")
            b: Any = pair.get("b")
            if not (_is_int(a) and _is_int(b) and 0 <= a < len(gpus) and 0 <= b < len(gpus)):
                raise FileFormatError(
                    origin, f"needs integer 'a' and 'b' in 0..{len(gpus) - 1}", field=where
                )
            p2p = pair.get("p2p") or {}
            if not isinstance(p2p, dict) or not all(_is_int(v) for v in p2p.values()):
                raise FileFormatError(
                    origin, "expected {capability: integer status}", field=f"{where}.p2p"
                )
            _check_optional(origin, where, pair, "topology_level", int)
            _check_optional(origin, where, pair, "torch_can_access_peer", bool)
            self._pairs[(a, b)] = pair
            self._pairs.setdefault((b, a), pair)

    @classmethod
    def load(cls, path: Path) -> RecordedNvml:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileFormatError(path, "no such topology file") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise FileFormatError(path, f"unreadable topology: {exc}") from None
        if not isinstance(data, dict):
            raise FileFormatError(path, "expected a JSON object")
        return cls(data, str(path))

    def _gpu(self, i: int, field: str) -> Any:
        value = self._gpus[i].get(field)
        if value is None:
            raise NvmlQueryError(f"{field} not recorded")
        return value

    def _pair(self, i: int, j: int) -> dict[str, Any]:
        pair = self._pairs.get((i, j))
        if pair is None:
            raise NvmlQueryError(f"pair {i}-{j} not recorded")
        return pair

    def unavailable_reason(self) -> str | None:
        reason = self._data.get("unavailable")
        return None if reason is None else str(reason)

    def driver_version(self) -> str | None:
        v = self._data.get("driver_version")
        return None if v is None else str(v)

    def cuda_driver_version(self) -> int | None:
        v = self._data.get("cuda_driver_version")
        return None if v is None else int(v)

    def device_count(self) -> int:
        return len(self._gpus)

    def name(self, i: int) -> str:
        return str(self._gpu(i, "name"))

    def bus_id(self, i: int) -> str:
        return str(self._gpu(i, "bus_id"))

    def memory_total_bytes(self, i: int) -> int:
        return int(self._gpu(i, "memory_total_bytes"))

    def pcie(self, i: int) -> PcieLink:
        p = self._gpus[i].get("pcie") or {}
        return PcieLink(
            p.get("curr_gen"), p.get("max_gen"), p.get("curr_width"), p.get("max_width")
        )

    def numa_node(self, i: int) -> int | None:
        v = self._gpus[i].get("numa_node")
        return None if v is None else int(v)

    def cpu_affinity(self, i: int) -> list[int]:
        return [int(c) for c in self._gpu(i, "cpu_affinity")]

    def nvlinks(self, i: int) -> list[NvLinkInfo]:
        return [
            NvLinkInfo(int(x["link"]), bool(x["active"]), x.get("version"), x.get("remote_bus_id"))
            for x in self._gpus[i].get("nvlinks", [])
        ]

    def p2p_status(self, i: int, j: int, cap: str) -> int:
        p2p = self._pair(i, j).get("p2p") or {}
        if cap not in p2p:
            raise NvmlQueryError(f"p2p {cap} not recorded")
        return int(p2p[cap])

    def topology_level(self, i: int, j: int) -> int:
        v = self._pair(i, j).get("topology_level")
        if v is None:
            raise NvmlQueryError("topology level not recorded")
        return int(v)

    def torch_can_access_peer(self, i: int, j: int) -> bool | None:
        try:
            v = self._pair(i, j).get("torch_can_access_peer")
        except NvmlQueryError:
            return None
        return None if v is None else bool(v)


def record_source(source: NvmlSource) -> dict[str, Any]:
    """Snapshot a source in RecordedNvml's format, so a real box can become a test fixture."""
    out: dict[str, Any] = {
        "unavailable": source.unavailable_reason(),
        "driver_version": source.driver_version(),
        "cuda_driver_version": source.cuda_driver_version(),
        "gpus": [],
        "pairs": [],
    }

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except NvmlQueryError:
            return None

    n = source.device_count()
    for i in range(n):
        pcie = source.pcie(i)
        links = attempt(source.nvlinks, i) or []
        out["gpus"].append(
            {
                "name": attempt(source.name, i),
                "bus_id": attempt(source.bus_id, i),
                "memory_total_bytes": attempt(source.memory_total_bytes, i),
                "pcie": pcie.__dict__,
                "numa_node": attempt(source.numa_node, i),
                "cpu_affinity": attempt(source.cpu_affinity, i),
                "nvlinks": [link.__dict__ for link in links],
            }
        )
    for a in range(n):
        for b in range(a + 1, n):
            p2p = {cap: attempt(source.p2p_status, a, b, cap) for cap in P2P_CAPS}
            out["pairs"].append(
                {
                    "a": a,
                    "b": b,
                    "p2p": {k: v for k, v in p2p.items() if v is not None},
                    "topology_level": attempt(source.topology_level, a, b),
                    "torch_can_access_peer": source.torch_can_access_peer(a, b),
                }
            )
    return out
