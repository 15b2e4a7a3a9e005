"""The target's architecture from the served model's own config.json, when its path is a
local folder: launched or attached servers, never the in-process simulator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from specbench.harness.engine import Deployment
from specbench.harness.engines import get_engine
from specbench.harness.server_backend import ServerBackend
from specbench.harness.sglang import SGLANG
from specbench.harness.sim_backend import SimBackend
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.sweeps.backends import SweepBackends, served_target

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "model_configs"


def _launched(model_path: str) -> SweepBackends:
    target = load_target("minimax-m2.7")
    backend = ServerBackend(target, endpoint="http://127.0.0.1:1")
    return SweepBackends(backend, served=Deployment(model_path=model_path))


def test_a_local_model_folder_gives_the_targets_architecture(tmp_path: Path) -> None:
    folder = tmp_path / "Qwen3-30B-A3B"
    shutil.copytree(CONFIGS / "Qwen3-30B-A3B", folder)
    notes: list[str] = []
    preset = load_target("minimax-m2.7")
    target, used = served_target(preset, SGLANG, _launched(str(folder)), notes)
    assert used == str(folder / "config.json")
    assert (target.architecture, target.arch.layers, target.arch.num_experts) == (
        "Qwen3MoeForCausalLM",
        48,
        128,
    )
    # The preset's serving side stays: its draft, paths and options are not the config's.
    assert (target.draft, target.model_path, target.card_config) == (
        preset.draft,
        preset.model_path,
        preset.card_config,
    )
    assert notes and str(folder / "config.json") in notes[0]


def test_a_hub_name_or_the_simulator_keeps_the_presets_architecture(tmp_path: Path) -> None:
    preset = load_target("minimax-m2.7")
    notes: list[str] = []
    assert served_target(preset, SGLANG, _launched("MiniMaxAI/MiniMax-M2.7"), notes) == (
        preset,
        None,
    )
    sim = SimBackend(PerformanceModel(preset, load_hardware("h200-nvlink"), seed=0))
    folder = CONFIGS / "Qwen3-30B-A3B"
    backends = SweepBackends(sim, served=Deployment(model_path=str(folder)))
    assert served_target(preset, get_engine("sim"), backends, notes) == (preset, None)
    assert notes == []


def test_an_unreadable_served_config_is_said_and_the_preset_stays(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["X"], "model_type": "x"}))
    notes: list[str] = []
    preset = load_target("minimax-m2.7")
    assert served_target(preset, SGLANG, _launched(str(tmp_path)), notes) == (preset, None)
    assert len(notes) == 1 and "cannot be read" in notes[0] and "preset's architecture" in notes[0]


@pytest.mark.parametrize("variable", ["${SERVED_MODELS}/m", "$SERVED_MODELS/m"])
def test_the_path_is_expanded_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    shutil.copytree(CONFIGS / "Qwen3-8B", tmp_path / "m")
    monkeypatch.setenv("SERVED_MODELS", str(tmp_path))
    _, used = served_target(load_target("minimax-m2.7"), SGLANG, _launched(variable), [])
    assert used == str(tmp_path / "m" / "config.json")
