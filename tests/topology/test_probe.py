"""run_probe, the probe file, and the CLI: real gloo ranks, real subprocesses."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from specbench.errors import BadInputError, FileFormatError, RunFailedError
from specbench.schema import write_json
from specbench.topology import (
    InterconnectClass,
    ProbeOptions,
    ProbeResult,
    RecordedNvml,
    load_probe,
    parse_backends,
    parse_sizes,
    run_probe,
)
from specbench.topology.collectives import TimingPlan, measure_allreduce
from specbench.topology.probe import plan_measurements
from tests.support import DATA as TEST_DATA

DATA = TEST_DATA / "topologies"
NO_NVML = {"unavailable": "NVML unavailable: test host", "gpus": []}


def _torch_has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _nvml_works() -> bool:
    from specbench.topology import PynvmlSource

    src = PynvmlSource()
    src.close()
    return src.unavailable_reason() is None


def test_parse_sizes_and_backends() -> None:
    assert parse_sizes("2K,64K,1M") == (2048, 65536, 2**20)
    assert parse_sizes("1m, 4096,2KiB,2k") == (2048, 4096, 2**20)
    for bad in ("2Q", "", "K", "1,,2", "2", "5G"):
        with pytest.raises(BadInputError, match="--sizes"):
            parse_sizes(bad)
    assert parse_backends("gloo,nccl,gloo") == ("gloo", "nccl")
    with pytest.raises(BadInputError, match="unknown backend 'mpi'"):
        parse_backends("gloo,mpi")


def test_plan_rejects_impossible_world_sizes() -> None:
    with pytest.raises(BadInputError, match="needs 2 GPUs, but this host has 0"):
        plan_measurements(ProbeOptions(backends=("nccl",)), gpu_count=0, cpu_count=2)
    with pytest.raises(BadInputError, match="exceeds this host's 2 CPUs"):
        plan_measurements(ProbeOptions(world_size=3, backends=("gloo",)), 0, 2)
    with pytest.raises(BadInputError, match="at least 2 ranks"):
        plan_measurements(ProbeOptions(world_size=1), 0, 2)
    plan = plan_measurements(ProbeOptions(), gpu_count=0, cpu_count=2)
    assert plan.backends == ("gloo",) and plan.world_sizes == {"gloo": 2}
    assert plan.sizes[0] == 2048 and plan.sizes[-1] == 256 * 2**20
    plan = plan_measurements(ProbeOptions(), gpu_count=4, cpu_count=64)
    assert plan.world_sizes == {"nccl": 4, "nccl-host-staged": 4, "gloo": 2}


def test_run_probe_measures_gloo_for_real(tmp_path: Path) -> None:
    options = ProbeOptions(
        sizes=(2048, 2**20), backends=("gloo",), iters=5, quick=True, source=RecordedNvml(NO_NVML)
    )
    result = run_probe(options)
    assert multiprocessing.active_children() == []
    assert [(r.backend, r.mode, r.world_size, r.bytes) for r in result.allreduce] == [
        ("gloo", "cpu", 2, 2048),
        ("gloo", "cpu", 2, 2**20),
    ]
    for r in result.allreduce:
        assert r.latency_us > 0 and 1 <= r.iters <= 5
        assert r.busbw_gbps == pytest.approx(r.algbw_gbps)  # 2(n-1)/n == 1 at n=2
    assert result.classification.interconnect_class is InterconnectClass.CPU_ONLY
    assert len(result.fits) == 1 and result.fits[0].bandwidth_gbps > 0

    path = tmp_path / "probe.json"
    write_json(path, result.to_json())
    again = load_probe(path)
    assert again.to_json() == json.loads(json.dumps(result.to_json()))
    assert again.fit_for("gloo", "cpu") == result.fits[0]


def test_hgx_fixture_round_trips_through_the_probe_file(tmp_path: Path) -> None:
    source = RecordedNvml.load(DATA / "hgx_h200_8gpu_nvswitch.json")
    result = run_probe(ProbeOptions(measure=False, source=source))
    assert result.allreduce == [] and result.fits == []
    path = tmp_path / "p.json"
    write_json(path, result.to_json())
    loaded = load_probe(path)
    assert loaded.inventory == result.inventory
    assert loaded.classification == result.classification
    assert loaded.classification.interconnect_class is InterconnectClass.NVLINK


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(kind="specbench.run"), "kind"),
        (lambda d: d.pop("fits"), "fits"),
        (lambda d: d["allreduce"].append({"backend": "gloo"}), "allreduce[0]"),
        (lambda d: d["interconnect"].update({"class": "warp-drive"}), "interconnect"),
        (lambda d: d.pop("schema_version"), "schema_version"),
    ],
)
def test_load_probe_names_file_and_field(tmp_path: Path, edit: Any, field: str) -> None:
    result = run_probe(ProbeOptions(measure=False, source=RecordedNvml(NO_NVML)))
    data = {"schema_version": "1.0", **result.to_json()}
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError) as info:
        load_probe(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_failed_rank_is_reported_and_reaped() -> None:
    if _torch_has_cuda():
        pytest.skip("needs a host where NCCL ranks cannot start")
    with pytest.raises(RunFailedError, match="nccl all-reduce failed on rank"):
        measure_allreduce("nccl", 2, [2048], TimingPlan(1, 1, 1, 0.01, 20))
    assert multiprocessing.active_children() == []


def test_interrupt_while_measuring_leaves_no_child() -> None:
    pids: list[int] = []

    def interrupt(_nbytes: int) -> None:
        pids.extend(p.pid for p in multiprocessing.active_children() if p.pid)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_allreduce("gloo", 2, [2048, 4096, 8192], TimingPlan(1, 1, 2, 0.01, 20), interrupt)
    assert len(pids) == 2
    assert multiprocessing.active_children() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "specbench", "probe", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_quick_json_measures_gloo(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "probe.json"
    proc = _cli("--json", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "specbench.probe" and data["schema_version"]
    assert set(data) >= {
        "specbench_version",
        "host",
        "interconnect",
        "gpus",
        "pairs",
        "allreduce",
        "fits",
        "p2p_copy",
    }
    assert data["host"]["cpu_count"] >= 1 and data["host"]["torch_version"]
    gloo = [r for r in data["allreduce"] if r["backend"] == "gloo"]
    assert len(gloo) >= 3 and all(r["latency_us"] > 0 and r["busbw_gbps"] > 0 for r in gloo)
    assert {f["backend"] for f in data["fits"]} >= {"gloo"}
    if not _nvml_works():
        assert data["interconnect"]["class"] == "cpu-only"
        assert data["nvml"]["available"] is False and data["nvml"]["unavailable_reason"]
        assert data["interconnect"]["sglang"]["custom_all_reduce"] is False
    assert load_probe(out).to_json()["allreduce"] == data["allreduce"]


def test_cli_run_alias_renders_tables_from_a_recorded_topology() -> None:
    topology = str(DATA / "pcie_4gpu_two_hostbridges.json")
    proc = _cli("--no-measure", "run", "--nvml-from", topology)
    assert proc.returncode == 0, proc.stderr
    assert "host-staged" in proc.stdout and "IOH_TOPOLOGY_NOT_SUPPORTED" in proc.stdout
    assert "custom all-reduce: off" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "gloo,mpi"], "unknown backend 'mpi'"),
        (["--sizes", "2K,lots"], "--sizes"),
        (["--backends", "gloo", "--world-size", "4096"], "exceeds this host"),
        (["--out", "{file}/probe.json"], "--out"),
        (["--out", "{dir}"], "is a directory"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "file").write_text("x")
    args = [a.format(file=tmp_path / "file", dir=tmp_path) for a in args]
    proc = _cli("--json", "--quick", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specbench: error:") and message in lines[0]
    assert proc.stdout == ""


def test_cli_nccl_without_gpus_is_bad_input() -> None:
    if _torch_has_cuda():
        pytest.skip("this host has CUDA GPUs")
    proc = _cli("--backends", "nccl", "--world-size", "2", "--quick")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs 2 GPUs, but this host has 0" in lines[0]


def test_probe_result_from_json_is_public() -> None:
    result = run_probe(ProbeOptions(measure=False, source=RecordedNvml(NO_NVML)))
    assert ProbeResult.from_json("mem", {"schema_version": "1.0", **result.to_json()}) == result


_KILLED_PARENT = """
import multiprocessing, sys
from specbench.topology.collectives import TimingPlan, measure_allreduce

def on_size(_nbytes):
    pids = [str(p.pid) for p in multiprocessing.active_children() if p.pid]
    print(" ".join(pids), flush=True)

if __name__ == "__main__":
    # About a minute of measuring: far longer than the test waits after the kill.
    plan = TimingPlan(1, 5, 100000, 0.5, 120)
    measure_allreduce("gloo", 2, [2048 * (k + 1) for k in range(120)], plan, on_size)
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaps (PID 1 of a container may not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_ranks_die_with_a_sigkilled_probe(tmp_path: Path) -> None:
    import signal
    import time

    script = tmp_path / "parent.py"
    script.write_text(_KILLED_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        pids = [int(x) for x in line.split()]
        assert len(pids) == 2, line
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.1)
    alive = [p for p in pids if not _gone(p)]
    for pid in alive:  # do not leak them into the rest of the suite either way
        os.kill(pid, signal.SIGKILL)
    assert alive == []
