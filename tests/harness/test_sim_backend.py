"""SimBackend against the real PerformanceModel: tau, speedup, determinism, closed loop."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.harness.backend import Backend, LoadSpec
from specbench.harness.metrics import summarize
from specbench.harness.prompts import Prompt, builtin_prompts, estimate_tokens
from specbench.harness.sim_backend import SimBackend
from specbench.model import PerformanceModel
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig

CONFIG = SpecConfig(3, 4, 8)


def run(
    model: PerformanceModel,
    config: SpecConfig | None,
    tmp_path: Path,
    *,
    concurrency: int = 1,
    seed: int = 0,
    prompts: Sequence[Prompt] | None = None,
    max_new_tokens: int = 256,
    request_timeout_s: float = 600.0,
) -> list[RequestRecord]:
    backend = SimBackend(model, seed=seed)
    load = LoadSpec(
        concurrency=concurrency,
        prompts=builtin_prompts() if prompts is None else prompts,
        max_new_tokens=max_new_tokens,
        request_timeout_s=request_timeout_s,
    )
    with backend.session(config, log_path=tmp_path / "logs" / "server.log") as session:
        return session.run(load)


def test_describe_and_contract(real_model: PerformanceModel) -> None:
    backend = SimBackend(real_model)
    assert isinstance(backend, Backend)
    assert backend.name == "sim" and backend.simulated is True
    info = backend.describe()
    assert info["backend"] == "sim" and info["simulated"] is True
    assert info["hardware"] == "h200-nvlink"
    assert info["interconnect_class"] == real_model.hardware.interconnect_class
    assert info["tp"] == real_model.hardware.tp


@pytest.mark.parametrize("config", [CONFIG, SpecConfig(5, 1, 6), SpecConfig(6, 8, 32)])
def test_measured_tau_matches_model(
    real_model: PerformanceModel, tmp_path: Path, config: SpecConfig
) -> None:
    # The built-in mix has equal numbers of chat, code and math prompts, like the
    # model's domain-averaged expected_tau.
    records = run(real_model, config, tmp_path, concurrency=8, max_new_tokens=512)
    metrics = summarize(records)
    expected = real_model.expected_tau(config)
    assert metrics.tau == pytest.approx(expected, rel=0.05)
    for domain in ("chat", "code", "math"):
        domain_tau = summarize([r for r in records if r.domain == domain]).tau
        assert domain_tau == pytest.approx(real_model.expected_tau(config, domain), rel=0.05)
    assert metrics.simulated


def test_speedup_at_concurrency_one_matches_prediction(
    real_model: PerformanceModel, tmp_path: Path
) -> None:
    base = summarize(run(real_model, None, tmp_path))
    spec = summarize(run(real_model, CONFIG, tmp_path), baseline=base)
    predicted = real_model.predict(CONFIG, 1).speedup
    assert spec.speedup == pytest.approx(predicted, rel=0.10)
    # one stream at a time: its decode speed is the baseline step rate
    assert base.per_stream_tokens_per_s == pytest.approx(
        1.0 / real_model.decode_step_s(None, 1), rel=0.01
    )


def test_baseline_records(real_model: PerformanceModel, tmp_path: Path) -> None:
    records = run(real_model, None, tmp_path, concurrency=4, max_new_tokens=32)
    assert records and all(
        r.spec_verify_ct is None and r.spec_accept_length is None for r in records
    )
    assert all(r.completion_tokens == 32 and r.ok for r in records)
    assert math.isnan(summarize(records).tau)


def test_record_fields(real_model: PerformanceModel, tmp_path: Path) -> None:
    prompts = builtin_prompts()
    records = run(real_model, CONFIG, tmp_path, concurrency=3, max_new_tokens=64)
    assert sorted(r.prompt_id for r in records) == sorted(p.id for p in prompts)
    by_id = {p.id: p for p in prompts}
    for r in records:
        assert r.simulated and r.concurrency == 3 and r.config_key == "3-4-8" and r.ok
        assert r.prompt_tokens == estimate_tokens(by_id[r.prompt_id].text)
        assert r.domain == by_id[r.prompt_id].domain
        assert r.completion_tokens == 64
        assert r.spec_verify_ct is not None
        assert math.ceil(63 / (CONFIG.num_steps + 1)) <= r.spec_verify_ct <= 63
        assert r.spec_accept_length == pytest.approx(64 / r.spec_verify_ct)
        assert r.ttft_ms is not None and r.e2e_ms is not None and 0 < r.ttft_ms < r.e2e_ms
        # loadgen's convention: one ITL entry per token after the first, summing to the decode time
        assert len(r.itl_ms) == 63
        assert sum(r.itl_ms) == pytest.approx(r.e2e_ms - r.ttft_ms)
    log = (tmp_path / "logs" / "server.log").read_text()
    assert "SIMULATED" in log and "stopped" in log


def test_same_seed_same_records_other_seed_differs(
    real_model: PerformanceModel, tmp_path: Path
) -> None:
    a = [r.to_dict() for r in run(real_model, CONFIG, tmp_path, concurrency=5, seed=7)]
    b = [r.to_dict() for r in run(real_model, CONFIG, tmp_path, concurrency=5, seed=7)]
    c = [r.to_dict() for r in run(real_model, CONFIG, tmp_path, concurrency=5, seed=8)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_closed_loop_never_exceeds_concurrency(
    real_model: PerformanceModel, tmp_path: Path, concurrency: int
) -> None:
    records = run(real_model, CONFIG, tmp_path, concurrency=concurrency, max_new_tokens=48)
    events: list[tuple[float, int]] = []
    for r in records:
        assert r.started_at is not None and r.e2e_ms is not None
        events.append((r.started_at, 1))
        events.append((r.started_at + r.e2e_ms / 1000.0, -1))
    # ends sort before starts at the same instant: the next request starts as one ends
    events.sort(key=lambda e: (round(e[0], 9), e[1]))
    in_flight = peak = 0
    for _, delta in events:
        in_flight += delta
        peak = max(peak, in_flight)
    assert peak == concurrency


def test_warmup_not_recorded_num_requests_cycles_and_progress(
    real_model: PerformanceModel, tmp_path: Path
) -> None:
    prompts = [Prompt(f"q{i}", "math", f"Solve {i} + {i} step by step.") for i in range(3)]
    calls: list[tuple[int, int]] = []
    backend = SimBackend(real_model)
    with backend.session(CONFIG, log_path=tmp_path / "s.log") as session:
        load = LoadSpec(
            concurrency=2, prompts=prompts, max_new_tokens=16, warmup_requests=4, num_requests=7
        )
        records = session.run(load, progress=lambda done, total: calls.append((done, total)))
        info = session.server_info()
    assert len(records) == 7
    assert sorted(r.prompt_id for r in records) == ["q0", "q0", "q0", "q1", "q1", "q2", "q2"]
    assert calls == [(i, 7) for i in range(1, 8)]
    assert info["simulated"] is True and info["config_key"] == "3-4-8"
    assert session.endpoint is None and session.config == CONFIG


def test_request_timeout_marks_records_failed(real_model: PerformanceModel, tmp_path: Path) -> None:
    records = run(
        real_model, None, tmp_path, concurrency=2, max_new_tokens=400, request_timeout_s=0.5
    )
    assert records and all(not r.ok and "timed out" in (r.error or "") for r in records)
    assert all(r.completion_tokens < 400 for r in records)
    assert summarize(records).num_errors == len(records)


def test_unknown_dataset_domain_is_simulated_as_chat(
    real_model: PerformanceModel, tmp_path: Path
) -> None:
    text = "Translate this sentence into French: the cat sleeps on the warm windowsill."
    odd = run(real_model, CONFIG, tmp_path, prompts=[Prompt("t", "translation", text)])
    chat = run(real_model, CONFIG, tmp_path, prompts=[Prompt("t", "chat", text)])
    assert odd[0].domain == "translation"
    assert odd[0].spec_verify_ct == chat[0].spec_verify_ct


def test_load_spec_rejects_nonsense() -> None:
    prompts = builtin_prompts()[:2]
    with pytest.raises(BadInputError, match="concurrency"):
        LoadSpec(concurrency=0, prompts=prompts)
    with pytest.raises(BadInputError, match="max_new_tokens"):
        LoadSpec(concurrency=1, prompts=prompts, max_new_tokens=0)
    with pytest.raises(BadInputError, match="no prompts"):
        LoadSpec(concurrency=1, prompts=[])
    with pytest.raises(BadInputError, match="num_requests"):
        LoadSpec(concurrency=1, prompts=prompts, num_requests=0)
    load = LoadSpec(concurrency=1, prompts=prompts, warmup_requests=3, num_requests=5)
    assert [p.id for p in load.request_prompts()] == [prompts[i % 2].id for i in range(5)]
    assert [p.id for p in load.warmup_prompts()] == [prompts[1].id, prompts[0].id, prompts[1].id]
