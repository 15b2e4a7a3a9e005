"""Target presets, hardware profiles and probe files: loading and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specbench.errors import BadInputError, FileFormatError
from specbench.model import (
    DEFAULT_SIM_PROFILE,
    PerformanceModel,
    list_profiles,
    list_targets,
    load_hardware,
    load_target,
)
from specbench.model._data import data_dir
from specbench.spec_config import SpecConfig

REQUIRED_PROFILES = {
    "h200-nvlink",
    "h100-nvlink",
    "h100-pcie-p2p",
    "l40s-pcie-host-staged",
    "rtx4090-pcie-host-staged",
}


def test_targets_are_listed_and_load() -> None:
    assert {"minimax-m2.7", "llama-3.1-8b"} <= set(list_targets())
    mm = load_target("minimax-m2.7")
    assert mm.model_path == "MiniMaxAI/MiniMax-M2.7"
    assert mm.draft_model_path == "Lorbus/MiniMax-M2.7-EAGLE3"
    assert mm.algorithm == "EAGLE3"
    assert mm.card_config == SpecConfig(3, 4, 8)
    assert mm.default_tp == 4 and mm.default_ep is None
    assert mm.parallel_options == ((4, None), (8, 8))
    assert "--trust-remote-code" in mm.extra_server_args
    assert mm.arch.layers == 62 and mm.arch.num_experts == 256
    assert 220e9 < mm.arch.total_params < 240e9
    assert 9e9 < mm.arch.active_params_per_token < 11.5e9
    ll = load_target("llama-3.1-8b")
    assert ll.default_tp == 1 and ll.draft_model_path.endswith("EAGLE3-Llama-3.1-Instruct-8B")


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(BadInputError, match=r"unknown target 'x'; known: .*minimax-m2\.7"):
        load_target("x")


def test_profiles_load_and_cite_sources() -> None:
    assert set(list_profiles()) >= REQUIRED_PROFILES
    assert DEFAULT_SIM_PROFILE in list_profiles()
    for name in list_profiles():
        p = load_hardware(name)
        assert p.sources and p.description
        assert p.interconnect_class in {"nvlink", "pcie-p2p", "host-staged"}
    assert load_hardware("h200-nvlink", tp=8).tp == 8
    assert load_hardware("h200-nvlink").tp == 4
    assert load_hardware("h200-nvlink", tp=1).active_fit is None


def test_unknown_profile_and_impossible_tp() -> None:
    with pytest.raises(BadInputError, match=r"unknown hardware 'nope'; known: .*h200-nvlink"):
        load_hardware("nope")
    with pytest.raises(BadInputError, match="has 4 GPU"):
        load_hardware("h100-pcie-p2p", tp=8)
    with pytest.raises(BadInputError, match="world size 3"):
        load_hardware("h200-nvlink", tp=3)


def _copy_profile(tmp_path: Path, old: str, new: str) -> Path:
    text = (data_dir("hardware") / "h200-nvlink.toml").read_text()
    assert old in text
    path = tmp_path / "edited.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_malformed_profile_names_file_and_field(tmp_path: Path) -> None:
    path = _copy_profile(tmp_path, "hbm_gbps = 4800", 'hbm_gbps = "fast"')
    with pytest.raises(FileFormatError, match=r"edited\.toml: field 'gpu\.hbm_gbps'"):
        load_hardware(str(path))
    path = _copy_profile(tmp_path, "alpha_us = 5.5", "alpha_us = -1")
    with pytest.raises(FileFormatError, match=r"allreduce\[1\]\.alpha_us"):
        load_hardware(str(path))
    path.write_text("name = [unclosed")
    with pytest.raises(FileFormatError, match="malformed TOML"):
        load_hardware(str(path))
    ok = _copy_profile(tmp_path, "alpha_us = 5.5", "alpha_us = 7.5")
    assert load_hardware(str(ok)).active_fit is not None


def _probe(tmp_path: Path, **over: object) -> Path:
    data: dict[str, object] = {
        "schema_version": "1.0",
        "interconnect": {"class": "host-staged"},
        "gpus": [{"index": i, "name": "NVIDIA L40S"} for i in range(4)],
        "fits": [
            {
                "backend": "nccl",
                "mode": "all_reduce",
                "world_size": 2,
                "alpha_us": 18.0,
                "bandwidth_gbps": 1.5,
            },
            {
                "backend": "nccl",
                "mode": "all_reduce",
                "world_size": 4,
                "alpha_us": 30.0,
                "bandwidth_gbps": 0.7,
            },
        ],
    }
    data.update(over)
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(data))
    return path


def test_probe_file_stands_in_for_a_profile(tmp_path: Path) -> None:
    prof = load_hardware(str(_probe(tmp_path)))
    assert prof.interconnect_class == "host-staged" and prof.tp == 4 and prof.gpus == 4
    assert prof.active_fit is not None and prof.active_fit.alpha_us == 30.0
    assert "L40S" in prof.gpu.name
    two = load_hardware(str(_probe(tmp_path)), tp=2)
    m = PerformanceModel(load_target("llama-3.1-8b"), two, samples=100)
    assert m.predict(SpecConfig(3, 4, 8), 1).speedup > 0


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"interconnect": {}}, "interconnect.class"),
        ({"interconnect": {"class": "infiniband"}}, "interconnect.class"),
        ({"gpus": "four"}, "gpus"),
        ({"gpus": []}, "gpus"),
        ({"gpus": [{"index": 0}]}, "gpus[0].name"),
        ({"fits": [{"world_size": 2, "alpha_us": 1.0}]}, "fits[0].bandwidth_gbps"),
    ],
)
def test_malformed_probe_names_field(tmp_path: Path, over: dict[str, object], field: str) -> None:
    with pytest.raises(FileFormatError) as info:
        load_hardware(str(_probe(tmp_path, **over)))
    assert "probe.json" in str(info.value)
    assert f"field '{field}'" in str(info.value)


def test_probe_without_schema_version_or_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"interconnect": {"class": "nvlink"}}')
    with pytest.raises(FileFormatError, match="schema_version"):
        load_hardware(str(path))
    path.write_text("{not json")
    with pytest.raises(FileFormatError, match="malformed JSON"):
        load_hardware(str(path))


def test_unknown_gpu_in_probe(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no datasheet figures for GPU 'Mystery'"):
        load_hardware(str(_probe(tmp_path, gpus=[{"name": "Mystery"}])))


def test_probe_fit_is_the_transport_sglang_runs(tmp_path: Path) -> None:
    """A probe measures NCCL, forced host-staged NCCL and gloo; only NCCL as configured
    prices the model, even where another mode happens to be cheaper at some size."""
    fits = [
        {
            "backend": "gloo",
            "mode": "cpu",
            "world_size": 2,
            "alpha_us": 1.0,
            "bandwidth_gbps": 900.0,
        },
        {
            "backend": "nccl",
            "mode": "host-staged",
            "world_size": 2,
            "alpha_us": 2.0,
            "bandwidth_gbps": 800.0,
        },
        {
            "backend": "nccl",
            "mode": "default",
            "world_size": 2,
            "alpha_us": 9.0,
            "bandwidth_gbps": 150.0,
        },
        {
            "backend": "nccl",
            "mode": "host-staged",
            "world_size": 4,
            "alpha_us": 40.0,
            "bandwidth_gbps": 0.5,
        },
    ]
    prof = load_hardware(str(_probe(tmp_path, fits=fits)), tp=2)
    assert prof.active_fit is not None
    assert (prof.active_fit.backend, prof.active_fit.alpha_us) == ("nccl", 9.0)
    # Where only the forced host-staged run exists, it is still a measurement of NCCL.
    four = load_hardware(str(_probe(tmp_path, fits=fits)), tp=4)
    assert four.active_fit is not None and four.active_fit.alpha_us == 40.0
    cpu_only = [fits[0]]
    with pytest.raises(BadInputError):
        load_hardware(str(_probe(tmp_path, fits=cpu_only)), tp=2)
