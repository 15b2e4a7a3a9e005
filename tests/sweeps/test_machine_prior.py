"""A launching sweep's prior from the machine's NVML inventory (recorded machines)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from specbench.sweeps.machine_prior import NVML_FROM_ENV, machine_prior, prior_spec
from specbench.topology.nvml import RecordedNvml

TOPOLOGIES = Path(__file__).resolve().parents[1] / "data" / "topologies"


@pytest.mark.parametrize(
    ("recording", "tp", "profile", "says"),
    [
        ("hgx_h200_8gpu_nvswitch.json", 8, "h200-nvlink", "on nvlink"),
        ("h200_1gpu_vm_recorded.json", 1, "h200-nvlink", "no all-reduce"),
        ("rtx4090_2gpu_no_p2p.json", 2, "rtx4090-pcie-host-staged", "on host-staged"),
        ("pcie_4gpu_two_hostbridges.json", 4, "l40s-pcie-host-staged", "on host-staged"),
        # Two L40S under one bridge do P2P; no shipped L40S profile has that class.
        ("pcie_4gpu_two_hostbridges.json", 2, "l40s-pcie-host-staged", "stand in"),
    ],
)
def test_each_recorded_machine_gets_its_own_class_prior(
    recording: str, tp: int, profile: str, says: str
) -> None:
    found = machine_prior(tp, RecordedNvml.load(TOPOLOGIES / recording))
    assert found is not None and found.profile == profile
    assert says in found.reason


def test_a_tp_larger_than_the_machine_is_said() -> None:
    found = machine_prior(4, RecordedNvml.load(TOPOLOGIES / "h200_1gpu_vm_recorded.json"))
    assert found is not None and "needs more than the 1 GPUs here" in found.reason


def test_hardware_wins_and_attach_mode_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NVML_FROM_ENV, str(TOPOLOGIES / "rtx4090_2gpu_no_p2p.json"))
    notes: list[str] = []

    def prior(prior_hardware: str | None, hardware: str | None, launching: bool) -> str:
        return prior_spec(
            prior_hardware, hardware, launching=launching, tp=2, default="h200-nvlink", notes=notes
        )

    assert prior(None, "h100-nvlink", True) == "h100-nvlink"
    assert prior("b200-nvlink", None, True) == "b200-nvlink"
    assert prior(None, None, False) == "h200-nvlink"  # an attached server may be elsewhere
    assert notes == []
    assert prior(None, None, True) == "rtx4090-pcie-host-staged"
    assert len(notes) == 1 and "NVML" in notes[0]


def test_an_unknown_gpu_keeps_the_default_and_says_so(tmp_path: Path) -> None:
    data = json.loads((TOPOLOGIES / "rtx4090_2gpu_no_p2p.json").read_text())
    for gpu in data["gpus"]:
        gpu["name"] = "NVIDIA Tesla K80"
    recording = tmp_path / "k80.json"
    recording.write_text(json.dumps(data))
    found = machine_prior(2, RecordedNvml.load(recording))
    assert found is not None and found.profile is None and "K80" in found.reason


def test_a_launching_sweep_starts_from_the_machines_prior(tmp_path: Path) -> None:
    """serve-sim launched as the engine on a recorded 2 x RTX 4090 box: the manifest's
    prior is the 4090 host-staged profile, not the default h200-nvlink, and the console
    says where it came from."""
    launch = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
        "--hardware h200-nvlink --time-scale 0.02 --sglang-args {args}"
    )
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "specbench", "sweep", "--backend", "sglang", "--launch-cmd", launch,
         "--strategy", "fixed", "--config", "2,1,3", "--concurrency", "1", "--num-prompts", "2",
         "--max-new-tokens", "16", "--no-report", "--out", str(out)],
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, NVML_FROM_ENV: str(TOPOLOGIES / "rtx4090_2gpu_no_p2p.json")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["prior_hardware"] == "rtx4090-pcie-host-staged"
    assert "prior from this machine's NVML inventory" in proc.stdout + proc.stderr
