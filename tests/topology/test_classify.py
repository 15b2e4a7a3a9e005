"""Inventory and classification on recorded topologies (no GPU needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from specbench.topology import (
    AllReduceRow,
    InterconnectClass,
    RecordedNvml,
    build_inventory,
    classify,
    record_source,
)
from specbench.topology.collectives import make_row
from tests.support import DATA as TEST_DATA

DATA = TEST_DATA / "topologies"


def inventory(name: str):  # type: ignore[no-untyped-def]
    return build_inventory(RecordedNvml.load(DATA / name))


def test_hgx_inventory_reads_every_field() -> None:
    inv = inventory("hgx_h200_8gpu_nvswitch.json")
    assert inv.nvml_available and inv.gpu_count == 8 and len(inv.pairs) == 28
    g = inv.gpus[5]
    assert g.name == "NVIDIA H200"
    assert g.memory_gib is not None and 140 < g.memory_gib < 141
    assert (g.pcie_curr_gen, g.pcie_max_gen, g.pcie_curr_width, g.pcie_max_width) == (5, 5, 16, 16)
    assert g.numa_node == 1 and g.cpu_affinity is not None and 48 in g.cpu_affinity
    assert g.nvlinks_up == 18 and g.nvlink_version == 6
    assert inv.cuda_driver_version == "12.8"
    p = inv.pair(2, 6)
    assert p is not None
    assert p.p2p == {"read": "OK", "write": "OK", "nvlink": "OK", "atomics": "OK", "pci": "OK"}
    assert p.topology_name == "SYSTEM" and p.torch_can_access_peer is True
    # Links go to NVSwitches, not to GPU 6 directly.
    assert p.nvlinks_between == 0 and p.nvlink and p.topology_smi == "NV"


def test_hgx_is_nvlink_with_custom_allreduce() -> None:
    c = classify(inventory("hgx_h200_8gpu_nvswitch.json"))
    assert c.interconnect_class is InterconnectClass.NVLINK
    assert c.world_size == 8
    assert c.sglang.custom_all_reduce is True
    assert c.sglang.nccl_transport == "P2P/NVLink"
    assert any("NVLink links up per GPU: 18" in e for e in c.evidence)
    assert any("28 of 28 pairs report NVLink" in e for e in c.evidence)


def test_hgx_world_size_3_has_no_custom_allreduce() -> None:
    c = classify(inventory("hgx_h200_8gpu_nvswitch.json"), world_size=3)
    assert c.interconnect_class is InterconnectClass.NVLINK
    assert c.sglang.custom_all_reduce is False
    assert "not one of 2, 4, 6, 8" in c.sglang.reason


def test_split_pcie_inventory_and_host_staged_verdict() -> None:
    inv = inventory("pcie_4gpu_two_hostbridges.json")
    within, across = inv.pair(0, 1), inv.pair(1, 2)
    assert within is not None and across is not None
    assert within.p2p["read"] == "OK" and within.topology_name == "MULTIPLE"
    assert within.nccl_uses_p2p and not within.nvlink
    assert across.p2p["read"] == "IOH_TOPOLOGY_NOT_SUPPORTED" and across.topology_name == "SYSTEM"
    assert not across.nccl_uses_p2p and across.torch_can_access_peer is False
    assert inv.gpus[0].nvlinks_up == 0

    c = classify(inv)
    assert c.interconnect_class is InterconnectClass.HOST_STAGED
    assert c.sglang.custom_all_reduce is False
    assert c.sglang.nccl_transport == "P2P+SHM"
    assert "4 of 6 pairs" in c.sglang.reason
    assert any("IOH_TOPOLOGY_NOT_SUPPORTED" in e for e in c.evidence)


def test_split_pcie_two_gpus_under_one_switch_use_custom_allreduce() -> None:
    c = classify(inventory("pcie_4gpu_two_hostbridges.json"), world_size=2)
    assert c.interconnect_class is InterconnectClass.PCIE_P2P
    assert c.sglang.custom_all_reduce is True
    assert c.sglang.nccl_transport == "P2P/PCIe"


def test_split_pcie_world_size_4_restricted_to_p2p_pairs_still_off() -> None:
    # A P2P-capable 4-GPU PCIe box still gets NCCL: custom AR needs NVLink beyond 2 GPUs.
    data = json.loads((DATA / "pcie_4gpu_two_hostbridges.json").read_text())
    for pair in data["pairs"]:
        pair.update(
            p2p={"read": 0, "write": 0, "nvlink": 5, "atomics": 5},
            topology_level=20,
            torch_can_access_peer=True,
        )
    c = classify(build_inventory(RecordedNvml(data)))
    assert c.interconnect_class is InterconnectClass.PCIE_P2P
    assert c.sglang.custom_all_reduce is False
    assert "needs NVLink" in c.sglang.reason


def test_consumer_gpus_without_p2p_are_host_staged() -> None:
    inv = inventory("rtx4090_2gpu_no_p2p.json")
    assert [g.name for g in inv.gpus] == ["NVIDIA GeForce RTX 4090"] * 2
    assert inv.gpus[0].pcie_curr_gen == 1 and inv.gpus[0].numa_node is None
    pair = inv.pairs[0]
    assert pair.p2p["read"] == "GPU_NOT_SUPPORTED" and pair.topology_name == "HOSTBRIDGE"
    c = classify(inv)
    assert c.interconnect_class is InterconnectClass.HOST_STAGED
    assert c.sglang.custom_all_reduce is False and c.sglang.nccl_transport == "SHM"
    assert "P2P does not work on 1 of 1 pairs" in c.sglang.reason


def test_torch_denying_peer_access_overrides_nvml() -> None:
    data = json.loads((DATA / "rtx4090_2gpu_no_p2p.json").read_text())
    data["pairs"][0].update(
        p2p={"read": 0, "write": 0, "nvlink": 5, "atomics": 5},
        topology_level=10,
        torch_can_access_peer=False,
    )
    c = classify(build_inventory(RecordedNvml(data)))
    assert c.interconnect_class is InterconnectClass.HOST_STAGED


def test_single_gpu_and_cpu_only() -> None:
    data = json.loads((DATA / "rtx4090_2gpu_no_p2p.json").read_text())
    data["gpus"] = data["gpus"][:1]
    data["pairs"] = []
    c = classify(build_inventory(RecordedNvml(data)))
    assert c.interconnect_class is InterconnectClass.SINGLE_GPU
    assert not c.sglang.custom_all_reduce and c.sglang.nccl_transport == "none"

    gloo = [
        make_row("gloo", "cpu", 2, 2048, 500e-6, 10),
        make_row("gloo", "cpu", 2, 2**20, 2e-3, 10),
    ]
    inv = build_inventory(
        RecordedNvml({"unavailable": "NVML Shared Library Not Found", "gpus": []})
    )
    assert not inv.nvml_available and inv.nvml_unavailable_reason == "NVML Shared Library Not Found"
    c = classify(inv, gloo)
    assert c.interconnect_class is InterconnectClass.CPU_ONLY
    assert "NVML Shared Library Not Found" in c.evidence[0]
    assert any("500.0 us at 2048 B" in e for e in c.evidence)


def test_measurements_become_evidence() -> None:
    rows: list[AllReduceRow] = [
        make_row("nccl", "default", 8, 2048, 8e-6, 100),
        make_row("nccl", "default", 8, 2**28, 1.0e-3, 10),
        make_row("nccl", "host-staged", 8, 2048, 40e-6, 100),
    ]
    c = classify(inventory("hgx_h200_8gpu_nvswitch.json"), rows)
    assert any("5.0x slower" in e for e in c.evidence)
    assert any("NCCL (as configured), 8 ranks: 8.0 us" in e for e in c.evidence)


def test_missing_queries_become_none_and_notes() -> None:
    data = json.loads((DATA / "rtx4090_2gpu_no_p2p.json").read_text())
    del data["gpus"][1]["memory_total_bytes"]
    del data["pairs"][0]["topology_level"]
    inv = build_inventory(RecordedNvml(data))
    assert inv.gpus[1].memory_total_bytes is None
    assert inv.pairs[0].topology_level is None
    assert any("GPU1 memory" in n for n in inv.notes)
    assert classify(inv).interconnect_class is InterconnectClass.HOST_STAGED


def test_record_source_round_trips() -> None:
    src = RecordedNvml.load(DATA / "pcie_4gpu_two_hostbridges.json")
    again = build_inventory(RecordedNvml(json.loads(json.dumps(record_source(src)))))
    assert again == build_inventory(src)


def test_bad_fixture_names_the_file() -> None:
    from specbench.errors import FileFormatError

    with pytest.raises(FileFormatError, match="gpus"):
        RecordedNvml({"gpus": 3}, "x.json")
    with pytest.raises(FileFormatError, match="no such topology file"):
        RecordedNvml.load(DATA / "absent.json")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"gpus": [{"nvlinks": [{"active": True}]}]}, "gpus[0].nvlinks[0]"),
        ({"gpus": [{"nvlinks": {"0": True}}]}, "gpus[0].nvlinks"),
        ({"gpus": [{"pcie": 4}]}, "gpus[0].pcie"),
        ({"gpus": [{"pcie": {"curr_gen": "5"}}]}, "gpus[0].pcie.curr_gen"),
        ({"gpus": [{"cpu_affinity": "0-15"}]}, "gpus[0].cpu_affinity"),
        ({"gpus": [{"memory_total_bytes": "80G"}]}, "gpus[0].memory_total_bytes"),
        ({"gpus": [{}], "pairs": 5}, "pairs"),
        ({"gpus": [{}, {}], "pairs": [{"a": 0, "b": 7}]}, "pairs[0]"),
        ({"gpus": [{}, {}], "pairs": [{"a": 0, "b": 1, "p2p": {"read": "OK"}}]}, "pairs[0].p2p"),
        ({"gpus": [{}, {}], "pairs": [{"a": 0, "b": 1, "topology_level": "PIX"}]}, "topology"),
    ],
)
def test_malformed_fixture_field_is_named(data: dict[str, Any], field: str) -> None:
    """A hand-edited topology is bad input naming the field, not a crash mid-inventory."""
    from specbench.errors import FileFormatError

    with pytest.raises(FileFormatError) as info:
        build_inventory(RecordedNvml(data, "bad.json"))
    assert "bad.json" in str(info.value) and field in str(info.value)
