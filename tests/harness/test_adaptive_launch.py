"""A launched server serving an adaptive config (ServerBackend.seeded_session): serve-sim
stands in for SGLang and reads the flags and the file the engine's format adds."""

from __future__ import annotations

import json
from pathlib import Path

from specbench.harness.adaptive_config import SGLANG_ADAPTIVE
from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.server_backend import ServerBackend
from specbench.model import load_target
from tests.support.servers import assert_group_gone, read_pid, serve_sim_launch_cmd

TIERS = {"1": {"candidate_steps": [2, 3]}, "4": {"candidate_steps": [0]}}


def test_the_launched_server_runs_the_adaptive_config_it_was_given(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    backend = ServerBackend(
        load_target("minimax-m2.7"), launch_cmd=serve_sim_launch_cmd(pidfile), ready_timeout_s=60
    )
    spec = AdaptiveSpec.of(SGLANG_ADAPTIVE, TIERS, initial_steps=2, name="tiers")
    log = tmp_path / "logs" / "ramp-written.log"
    with backend.seeded_session(spec.launch_config, spec, log_path=log, seed=0) as session:
        info = session.server_info()
    assert info["speculative_adaptive"] is True
    written = log.with_suffix(".adaptive.json")
    assert info["speculative_adaptive_config"] == str(written)
    assert json.loads(written.read_text()) == TIERS
    assert set(info["internal_states"][0]["adaptive_tiers"]) == {"1", "4"}
    assert info["speculative_num_steps"] == 2 and info["speculative_eagle_topk"] == 1
    assert_group_gone(read_pid(pidfile))
