"""The contract every engine keeps where it is measured, shared by all of them.

One load goes through each engine's own way of serving it: the simulator in process
(its in-process backend), SGLang's native protocol against serve-sim, vLLM's
OpenAI-compatible protocol against a replay of a recorded vLLM stream (the real CPU
engine runs the same path in tests/sweeps/test_vllm_engine.py when it is installed).
Whatever the engine, the records have one shape, tau comes from the requests, and the
engine's server-info trimming keeps only what it declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from specbench.harness.backend import LoadSpec
from specbench.harness.engine import EngineAdapter
from specbench.harness.engines import create
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.metrics import summarize
from specbench.harness.prompts import Prompt
from specbench.model import load_hardware, load_target
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig
from tests.support.servers import HARDWARE, TARGET, in_thread_serve_sim
from tests.support.vllm_replay import replay_app, servers

#: The replayed vLLM stream's answer: 24 tokens at k = 3.
TOKENS = 24
CHAIN = SpecConfig(3, 1, 4)
PROMPTS = [Prompt(f"p{i}", domain, "count from one " * 4) for i, domain in
           enumerate(("chat", "code", "math", "chat"))]  # fmt: skip
LOAD = LoadSpec(concurrency=2, prompts=PROMPTS, max_new_tokens=TOKENS, warmup_requests=0)


@dataclass
class Measured:
    engine: EngineAdapter
    config: SpecConfig
    records: list[RequestRecord]
    info: dict[str, Any]
    simulated: bool


@contextmanager
def measured(name: str, tmp_path: Path) -> Iterator[Measured]:
    engine = create(name)
    if engine.in_process:
        backend = engine.in_process_backend(
            load_target(TARGET), load_hardware(HARDWARE), seed=0, perturbation=0.0
        )
        with backend.session(CHAIN, log_path=tmp_path / "sim.log") as session:
            yield Measured(engine, CHAIN, session.run(LOAD), session.server_info(), True)
    elif name == "sglang":
        with in_thread_serve_sim(num_steps=3, topk=1, num_draft_tokens=4, time_scale=0.02) as ep:
            info = engine.fetch_info(ep)
            config = engine.config_from_server_info(info)
            assert config == CHAIN
            records = run_closed_loop(ep, LOAD, engine=engine, config=config)
            yield Measured(engine, config, records, info, True)
    else:
        with servers() as start:
            ep = start(replay_app("eagle3-k3.completions.stream.txt"))
            records = run_closed_loop(ep, LOAD, engine=engine, config=CHAIN)
            yield Measured(engine, CHAIN, records, {"version": "0.19.0"}, False)


@pytest.mark.parametrize("name", ["sim", "sglang", "vllm"])
def test_every_engine_measures_a_load_into_records_of_one_shape(name: str, tmp_path: Path) -> None:
    with measured(name, tmp_path) as run:
        records, k = run.records, run.config.num_steps
        assert len(records) == LOAD.total_requests
        for record in records:
            assert record.ok, record.error
            assert record.completion_tokens == TOKENS
            assert len(record.itl_ms) == TOKENS - 1  # one entry per token after the first
            assert record.ttft_ms is not None and record.e2e_ms is not None
            assert 0 < record.ttft_ms <= record.e2e_ms
            assert sum(record.itl_ms) <= record.e2e_ms - record.ttft_ms + 1e-6
            assert record.spec_verify_ct is not None
            assert 1 <= TOKENS / record.spec_verify_ct <= k + 1
            assert record.simulated is run.simulated
        tau = summarize(records).tau
        assert 1 <= tau <= k + 1
        resolved = run.engine.resolve_tau(tau, run.info, run.config)
        assert (resolved.source, resolved.problems) == ("per_request", [])
        kept = run.engine.trim_server_info(run.info)
        assert set(kept) <= {*run.engine.kept_info_fields, "avg_spec_accept_length"}
        assert kept.get("version") == run.info.get("version")
