"""Engine profiles, workload (context, temperature), draft TP, step breakdown, memory."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specbench.errors import BadInputError, FileFormatError, InvalidConfigError
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.model._data import data_dir
from specbench.model.engines import list_engines, load_engine
from specbench.model.workload import Workload
from specbench.spec_config import SpecConfig

CARD = SpecConfig(3, 4, 8)


def _llama(**kw: object) -> PerformanceModel:
    return PerformanceModel(
        load_target("llama-3.1-8b"),
        load_hardware("h100-nvlink", 1),
        samples=800,
        **kw,  # type: ignore[arg-type]
    )


def test_engines_are_data_and_priced_differently() -> None:
    assert {"sglang", "vllm"} <= set(list_engines())
    sg, vl = _llama(engine=load_engine("sglang")), _llama(engine=load_engine("vllm"))
    assert sg.decode_step_s(CARD, 1) != vl.decode_step_s(CARD, 1)
    assert sg.expected_tau(CARD) == vl.expected_tau(CARD)  # acceptance is the draft's
    with pytest.raises(BadInputError, match="unknown engine 'tgi'"):
        load_engine("tgi")


def test_malformed_engine_names_file_and_field(tmp_path: Path) -> None:
    text = (data_dir("engines") / "sglang.toml").read_text()
    path = tmp_path / "eng.toml"
    path.write_text(
        text.replace("tree_attention_efficiency = 1.0", "tree_attention_efficiency = 3")
    )
    with pytest.raises(FileFormatError, match=r"eng\.toml: field 'tree_attention_efficiency'"):
        load_engine(str(path))


def test_temperature_lowers_acceptance() -> None:
    greedy = _llama()
    assert _llama(workload=Workload(temperature=0.0)).expected_tau(CARD) == greedy.expected_tau(
        CARD
    )
    for cfg in (SpecConfig(3, 1, 4), CARD, SpecConfig(8, 8, 64)):
        taus = [_llama(workload=Workload(temperature=t)).expected_tau(cfg) for t in (0.0, 0.5, 1.0)]
        assert taus[0] > taus[1] > taus[2] > 1.0, (cfg, taus)
    with pytest.raises(BadInputError, match="--temperature"):
        Workload(temperature=-0.1)


def test_topk_beyond_the_search_space() -> None:
    m = _llama()
    wide = m.expected_tau(SpecConfig(6, 10, 32))  # a published EAGLE tree width
    assert 1.0 < wide <= 7.0
    assert m.expected_tau(SpecConfig(6, 16, 60)) >= m.expected_tau(SpecConfig(6, 2, 13))
    with pytest.raises(InvalidConfigError, match=r"topk 1\.\.16"):
        m.expected_tau(SpecConfig(3, 32, 8))


def test_context_length_from_the_workload() -> None:
    short, long = _llama(workload=Workload(128, 128)), _llama(workload=Workload(8192, 1024))
    assert long.cost.context_tokens == 8192 + 512
    assert long.decode_step_s(None, 32) > short.decode_step_s(None, 32)
    assert _llama().cost.context_tokens == load_target("llama-3.1-8b").overheads.context_tokens


def test_breakdown_sums_to_the_step_time() -> None:
    m = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink", 4), samples=200)
    for cfg in (None, CARD):
        for batch in (1, 32):
            parts = m.step_breakdown(cfg, batch)
            assert parts["total_ms"] == pytest.approx(m.decode_step_s(cfg, batch) * 1e3)
            pieces = ("draft_ms", "verify_ms", "allreduce_ms", "other_ms")
            assert sum(parts[k] for k in pieces) == pytest.approx(parts["total_ms"])
            assert all(parts[k] >= 0 for k in pieces)
    assert m.step_breakdown(None, 1)["draft_ms"] == 0
    assert m.step_breakdown(CARD, 1)["draft_ms"] > 0
    assert _llama().step_breakdown(CARD, 4)["allreduce_ms"] == 0  # one GPU
    hs = PerformanceModel(
        load_target("minimax-m2.7"), load_hardware("h100-pcie-host-staged", 4), samples=200
    )
    share = lambda p: p["allreduce_ms"] / p["total_ms"]  # noqa: E731
    assert share(hs.step_breakdown(CARD, 1)) > 2 * share(m.step_breakdown(CARD, 1))


def test_draft_tp_is_separate_from_the_target_tp() -> None:
    t, hw = load_target("minimax-m2.7"), load_hardware("h100-pcie-host-staged", 4)
    same = PerformanceModel(t, hw, samples=100)
    one = PerformanceModel(t, hw, samples=100, draft_tp=1)
    assert same.cost.draft_tp == 4 and one.cost.draft_tp == 1
    assert (
        one.step_breakdown(CARD, 1)["allreduce_ms"] < same.step_breakdown(CARD, 1)["allreduce_ms"]
    )
    assert one.step_breakdown(None, 1) == same.step_breakdown(None, 1)
    for bad in (0, 3, 8):
        with pytest.raises(BadInputError, match="draft"):
            PerformanceModel(t, hw, samples=100, draft_tp=bad)


def test_memory_check_flags_what_cannot_fit() -> None:
    ok = _llama().memory(CARD, 1)
    assert ok.fits and ok.max_batch > 1 and ok.weights_gib == pytest.approx(15.0, rel=0.05)
    big = PerformanceModel(
        load_target("llama-3.3-70b"), load_hardware("rtx3090-pcie-host-staged", 1), samples=50
    ).memory(CARD, 1)
    assert not big.fits and big.max_batch == 0
    m = _llama(workload=Workload(4096, 1024))
    limit = m.memory(CARD, 1).max_batch
    assert m.memory(CARD, limit).fits and not m.memory(CARD, limit + 1).fits
    assert m.memory(None, limit).draft_gib == 0
    assert m.memory(CARD, 1).as_dict()["fits"] is True


def test_closed_loop_run_drains_the_batch() -> None:
    m = _llama(workload=Workload(384, 512))
    steady = m.predict(SpecConfig(3, 1, 4), 64).speedup
    short_run = m.run_speedup(SpecConfig(3, 1, 4), 64, requests=80)
    long_run = m.run_speedup(SpecConfig(3, 1, 4), 64, requests=5000)
    # 80 prompts at 64 slots: most of the run is below batch 64, where speculation pays more.
    assert short_run > long_run
    assert long_run == pytest.approx(steady, rel=0.05)
    assert m.run_speedup(SpecConfig(3, 1, 4), 1, requests=10) == pytest.approx(
        m.predict(SpecConfig(3, 1, 4), 1).speedup, rel=1e-6
    )


def test_acceptance_by_position_matches_tau() -> None:
    m = _llama()
    for cfg in (SpecConfig(5, 1, 6), CARD):
        pos = m.acceptance_by_position(cfg, "chat")
        assert len(pos) == cfg.num_steps
        assert all(b <= a for a, b in itertools.pairwise(pos))
        assert 1.0 + sum(pos) == pytest.approx(m.expected_tau(cfg, "chat"), abs=1e-9)


@pytest.mark.parametrize(
    ("gpu", "profile"),
    [
        ("NVIDIA A100-SXM4-80GB", "a100-sxm-nvlink"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-p2p"),
        ("NVIDIA GeForce RTX 3090", "rtx3090-pcie-host-staged"),
        ("NVIDIA GeForce RTX 5090", "rtx5090-pcie-host-staged"),
        ("NVIDIA B200", "b200-nvlink"),
    ],
)
def test_new_gpus_have_profiles_and_match_probe_names(
    gpu: str, profile: str, tmp_path: Path
) -> None:
    shipped = load_hardware(profile)
    assert shipped.sources and shipped.gpu.hbm_gbps > 0
    probe = tmp_path / "probe.json"
    probe.write_text(
        json.dumps(
            {
                "schema_version": "1.0",
                "interconnect": {"class": shipped.interconnect_class},
                "gpus": [{"index": i, "name": gpu} for i in range(2)],
                "fits": [
                    {
                        "backend": "nccl",
                        "mode": "default",
                        "world_size": 2,
                        "alpha_us": 9.0,
                        "bandwidth_gbps": 10.0,
                    }
                ],
            }
        )
    )
    assert load_hardware(str(probe)).gpu == shipped.gpu


def _predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specbench", "predict", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_predict_cli_new_flags() -> None:
    res = _predict(
        "--target",
        "minimax-m2.7",
        "--hardware",
        "h200-nvlink",
        "--engine",
        "vllm",
        "--temperature",
        "0.7",
        "--input-len",
        "2048",
        "--output-len",
        "512",
        "--draft-tp",
        "1",
        "--config",
        "3,1,4",  # vLLM drafts chains: the tree 3-4-8 is refused (below)
        "--concurrency",
        "1,16",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["engine"]["name"] == "vllm" and data["draft_tp"] == 1
    assert data["workload"] == {
        "input_len": 2048,
        "output_len": 512,
        "context_tokens": 2304.0,
        "temperature": 0.7,
    }
    for best in data["best"]:
        parts = best["breakdown"]
        assert parts["total_ms"] == pytest.approx(best["step_time_ms"])
        assert best["memory"]["fits"] is True
        assert len(best["acceptance_by_position"]) == 3
    assert np.isfinite(data["rows"][0]["speedup"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--temperature", "-1"], "--temperature"),
        (["--input-len", "-5"], "--input-len"),
        (["--draft-tp", "3"], "draft"),
        (["--engine", "tgi"], "unknown engine 'tgi'"),
        (["--engine", "vllm", "--config", "3,4,8"], "topk must be 1"),
        (["--draft-profile", "llama-3.1-8b-eagle2"], "fitted for target"),
    ],
)
def test_predict_cli_bad_new_flags(args: list[str], needle: str) -> None:
    res = _predict("--target", "minimax-m2.7", "--concurrency", "1", *args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specbench: error:") and needle in lines[0]
