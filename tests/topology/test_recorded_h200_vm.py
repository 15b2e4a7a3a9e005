"""A topology and a probe recorded on a real single-H200 virtual machine (not hand-written).

`h200_1gpu_vm_recorded.json` is what `specbench probe record` wrote on a one-GPU H200 VM
(driver 580.159.04, CUDA 13.0, torch 2.11.0+cu130), and `h200_1gpu_vm_probe.json` what
`specbench probe --out` wrote there. The VM reports no NUMA node (None, not 0) and no
NVLink: both are the shapes real cloud VMs return, which the hand-written HGX fixtures
never exercise.
"""

from __future__ import annotations

import json

from specbench.model import load_hardware
from specbench.model.performance import PerformanceModel
from specbench.model.targets import load_target
from specbench.spec_config import SpecConfig
from specbench.topology import InterconnectClass, RecordedNvml, build_inventory, classify
from tests.support import DATA

RECORDING = DATA / "topologies" / "h200_1gpu_vm_recorded.json"
PROBE = DATA / "probes" / "h200_1gpu_vm_probe.json"


def test_recorded_vm_inventory_reads_a_missing_numa_node_as_unknown() -> None:
    inv = build_inventory(RecordedNvml.load(RECORDING))
    assert inv.nvml_available and inv.gpu_count == 1 and inv.pairs == []
    gpu = inv.gpus[0]
    assert gpu.name == "NVIDIA H200"
    assert gpu.memory_gib is not None and 140 < gpu.memory_gib < 141
    assert (gpu.pcie_curr_gen, gpu.pcie_curr_width) == (5, 16)
    assert gpu.numa_node is None
    assert gpu.nvlinks_up == 0


def test_recorded_vm_is_single_gpu_without_custom_allreduce() -> None:
    c = classify(build_inventory(RecordedNvml.load(RECORDING)))
    assert c.interconnect_class is InterconnectClass.SINGLE_GPU
    assert c.world_size == 1
    assert c.sglang.custom_all_reduce is False


def test_real_probe_prices_a_single_gpu_model() -> None:
    data = json.loads(PROBE.read_text())
    assert data["interconnect"]["class"] == "single-gpu"
    hw = load_hardware(str(PROBE))
    assert hw.tp == 1 and "H200" in hw.gpu.name
    model = PerformanceModel(load_target("llama-3.1-8b"), hw)
    pred = model.predict(SpecConfig(3, 1, 4), 1)
    assert 1.0 <= pred.tau <= 4.0
    assert pred.speedup > 1.0
