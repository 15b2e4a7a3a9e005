"""PynvmlSource against the real library (no driver here) and a fake pynvml module.

The fake checks the calls nvidia-ml-py really offers, with the argument types ctypes
needs (plain int P2P indexes, not the ``(0,)`` tuple the library exports for READ).
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from specbench.topology import PynvmlSource, build_inventory, classify
from specbench.topology.nvml import NvmlQueryError


class FakeNVMLError(Exception):
    def __str__(self) -> str:
        return "Not Supported"


class Handle:
    def __init__(self, i: int) -> None:
        self.i = i


def fake_pynvml(init_fails: bool = False) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    calls: list[str] = []
    m.calls = calls  # type: ignore[attr-defined]
    m.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    m.NVML_NVLINK_MAX_LINKS = 18  # type: ignore[attr-defined]
    m.NVML_P2P_CAPS_INDEX_READ = (0,)  # type: ignore[attr-defined]
    bus = ["00000000:18:00.0", "00000000:2A:00.0"]

    def fn(name: str, impl: Any) -> None:
        def wrapped(*args: Any) -> Any:
            calls.append(name)
            return impl(*args)

        setattr(m, name, wrapped)

    def init() -> None:
        if init_fails:
            raise FakeNVMLError

    fn("nvmlInit", init)
    fn("nvmlShutdown", lambda: None)
    fn("nvmlDeviceGetCount", lambda: 2)
    fn("nvmlDeviceGetHandleByIndex", Handle)
    fn("nvmlSystemGetDriverVersion", lambda: "570.1")
    fn("nvmlSystemGetCudaDriverVersion", lambda: 12080)
    fn("nvmlDeviceGetName", lambda h: b"NVIDIA H100 80GB HBM3")
    fn("nvmlDeviceGetPciInfo", lambda h: types.SimpleNamespace(busId=bus[h.i].encode()))
    fn("nvmlDeviceGetMemoryInfo", lambda h: types.SimpleNamespace(total=85899345920))
    fn("nvmlDeviceGetCurrPcieLinkGeneration", lambda h: 5)
    fn("nvmlDeviceGetMaxPcieLinkGeneration", lambda h: 5)
    fn("nvmlDeviceGetCurrPcieLinkWidth", lambda h: 16)

    def max_width(h: Handle) -> int:
        raise FakeNVMLError

    fn("nvmlDeviceGetMaxPcieLinkWidth", max_width)
    fn("nvmlDeviceGetNumaNodeId", lambda h: -1)
    fn("nvmlDeviceGetCpuAffinity", lambda h, words: [0b1011] + [0] * (words - 1))

    def link_state(h: Handle, link: int) -> int:
        if link >= 4:
            raise FakeNVMLError
        return 1

    fn("nvmlDeviceGetNvLinkState", link_state)
    fn("nvmlDeviceGetNvLinkVersion", lambda h, link: 6)
    fn(
        "nvmlDeviceGetNvLinkRemotePciInfo",
        lambda h, link: types.SimpleNamespace(busId=bus[1 - h.i]),
    )

    def p2p(a: Handle, b: Handle, idx: int) -> int:
        assert type(idx) is int and 0 <= idx <= 4, f"bad P2P index {idx!r}"
        return 0

    fn("nvmlDeviceGetP2PStatus", p2p)
    fn("nvmlDeviceGetTopologyCommonAncestor", lambda a, b: 10)
    return m


def test_real_library_without_driver_is_unavailable_not_a_crash() -> None:
    src = PynvmlSource()
    src.close()
    reason = src.unavailable_reason()
    if reason is None:
        pytest.skip("this host has a working NVIDIA driver")
    assert "NVML" in reason
    inv = build_inventory(src)
    assert not inv.nvml_available and inv.gpus == [] and inv.nvml_unavailable_reason == reason
    with pytest.raises(NvmlQueryError):
        src.name(0)


def test_fake_library_drives_the_whole_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_pynvml()
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake)
    src = PynvmlSource()
    inv = build_inventory(src)
    src.close()
    assert inv.nvml_available and inv.driver_version == "570.1"
    assert inv.cuda_driver_version == "12.8"
    g = inv.gpus[0]
    assert g.name == "NVIDIA H100 80GB HBM3" and g.bus_id == "00000000:18:00.0"
    assert (g.pcie_curr_gen, g.pcie_max_gen, g.pcie_curr_width, g.pcie_max_width) == (
        5,
        5,
        16,
        None,
    )
    assert g.numa_node is None and g.cpu_affinity == [0, 1, 3]
    assert g.nvlinks_up == 4 and g.nvlink_version == 6
    pair = inv.pairs[0]
    assert pair.p2p == {"read": "OK", "write": "OK", "nvlink": "OK", "atomics": "OK", "pci": "OK"}
    assert pair.topology_name == "SINGLE" and pair.nvlinks_between == 4
    assert classify(inv).sglang.custom_all_reduce is True
    assert "nvmlShutdown" in fake.calls  # type: ignore[attr-defined]


def test_fake_library_init_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pynvml", fake_pynvml(init_fails=True))
    src = PynvmlSource()
    assert src.unavailable_reason() == (
        "NVML unavailable: Not Supported (no NVIDIA driver on this host?)"
    )
    assert classify(build_inventory(src)).interconnect_class.value == "cpu-only"
