"""Server claims checked against the client's observation (issue cases, one test each)."""

from __future__ import annotations

import pytest

from specbench.harness.claims import (
    NO_SERVER_LATENCY,
    ClientView,
    latency_problem,
    verify_steps_problem,
)
from specbench.harness.engine import RequestStats
from specbench.harness.server_backend import HttpSession
from specbench.harness.vllm import VLLM
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig
from tests.support.servers import FaultServer, small_load

TREE = SpecConfig(3, 4, 8)  # at most num_steps + 1 = 4 tokens per verify step


def _run(
    finish: dict[str, object], *, tokens: int = 32, max_new_tokens: int = 32, pause_s: float = 0.0
) -> list[RequestRecord]:
    with FaultServer("claims", tokens=tokens, finish=finish, pause_s=pause_s) as server:
        return HttpSession(server.endpoint, TREE).run(
            small_load(n=2, concurrency=2, max_new_tokens=max_new_tokens, warmup_requests=0)
        )


def _errors(records: list[RequestRecord]) -> list[str]:
    assert len(records) == 2
    assert all(r.e2e_ms is None for r in records)
    return [str(r.error) for r in records]


def test_an_honest_server_passes_and_its_latency_is_used() -> None:
    records = _run({})
    assert all(r.ok and r.completion_tokens == 32 and r.tau == 2.0 for r in records)
    assert all(r.server_e2e_ms is not None and r.latency_fallback is None for r in records)


def test_tau_above_num_steps_plus_one_fails_the_request() -> None:
    for error in _errors(_run({"spec_verify_ct": 1})):
        assert "spec_verify_ct 1 for 32 tokens" in error and "at least 8 steps" in error


def test_zero_verify_steps_with_tokens_fails_instead_of_the_server_average() -> None:
    for error in _errors(_run({"spec_verify_ct": 0, "spec_accept_length": 3.5})):
        assert "spec_verify_ct 0 for 32 tokens" in error


def test_a_finishing_count_unlike_the_stream_fails() -> None:
    for error in _errors(_run({"completion_tokens": 2, "spec_verify_ct": 1})):
        assert "finishing chunk counts 2 tokens, 32 were streamed" in error


def test_more_tokens_than_max_new_tokens_fail_naming_the_overrun() -> None:
    errors = _errors(_run({"spec_verify_ct": 64}, tokens=128, max_new_tokens=32))
    assert all("128 tokens for max_new_tokens 32 (an overrun of 96)" in e for e in errors)


def test_a_latency_shorter_than_the_streamed_span_fails() -> None:
    # 0.5 s between the first token and the rest: far above any delivery jitter.
    errors = _errors(_run({"e2e_latency": 1e-7}, pause_s=0.5))
    assert all("shorter than the" in e and "over which its tokens arrived" in e for e in errors)


def test_a_latency_longer_than_the_client_waited_fails() -> None:
    for error in _errors(_run({"e2e_latency": 1e7})):
        assert "longer than the" in error and "the client waited" in error


def test_a_negative_latency_fails_instead_of_a_silent_fallback() -> None:
    for error in _errors(_run({"e2e_latency": -5})):
        assert "e2e_latency -5000 ms is impossible" in error


def test_a_missing_latency_is_a_labelled_fallback_to_the_client_clock() -> None:
    records = _run({"e2e_latency": None})
    assert all(r.ok and r.server_e2e_ms is None for r in records)
    assert all(r.latency_fallback == NO_SERVER_LATENCY for r in records)


def _view(**kw: object) -> ClientView:
    base: dict[str, object] = {
        "streamed_tokens": 24,
        "max_new_tokens": 24,
        "e2e_ms": 100.0,
        "span_ms": 80.0,
        "jitter_ms": 5.0,
        "config": SpecConfig(3, 1, 4),
    }
    base.update(kw)
    return ClientView(**base)  # type: ignore[arg-type]


def test_latency_bounds_use_the_measured_jitter() -> None:
    assert latency_problem(_view(), 76.0) is None  # 80 - 5 <= 76 <= 100
    assert latency_problem(_view(), 74.0) is not None
    assert latency_problem(_view(), 100.5) is not None
    assert latency_problem(_view(), float("nan")) is not None


@pytest.mark.parametrize(
    ("stats", "view", "expected"),
    [
        # the recorded eagle3-k3 usage chunk: 24 tokens, 6 steps, 18 accepted
        (RequestStats(24, 6, 6, 4.0, 18), _view(), None),
        # an n-gram drafter that found no match runs no step (ngram-k3 recording)
        (RequestStats(24, 6, None, None, None), _view(), None),
        (RequestStats(24, 6, 2, None, 18), _view(), "num_accepted_draft_tokens 18 in 2 steps"),
        (RequestStats(24, 6, 30, None, 0), _view(), "num_spec_steps 30 for 24 tokens"),
        (RequestStats(20, 6, 6, None, 14), _view(), "counts 20 tokens, 24 were streamed"),
        (RequestStats(40, 6, 6, None, 18), _view(streamed_tokens=40), "overrun of 16"),
        # without token ids the stream is counted one per chunk: a lower bound only
        (RequestStats(24, 6, 6, None, 18), _view(streamed_tokens=9, streamed_is_exact=False), None),
    ],
)
def test_vllm_per_request_claims(
    stats: RequestStats, view: ClientView, expected: str | None
) -> None:
    problem = VLLM.claim_problem(stats, view)
    assert (problem is None) if expected is None else (expected in str(problem)), problem


@pytest.mark.parametrize(
    ("counters", "expected"),
    [
        (
            {"drafts": 10, "draft_tokens": 30, "accepted": 20, "accepted_per_position": [9, 7, 4]},
            None,
        ),
        ({"drafts": 10, "draft_tokens": 30, "accepted": 31}, "31 accepted of 30 drafted"),
        ({"drafts": 10, "draft_tokens": 50, "accepted": 20}, "in 10 drafts of k = 3"),
        ({"drafts": 500, "draft_tokens": 1500, "accepted": 20}, "500 drafts for 100 tokens"),
        ({"drafts": float("nan"), "draft_tokens": 3, "accepted": 1}, "drafts = nan"),
        (
            {"drafts": 10, "draft_tokens": 30, "accepted": 20, "accepted_per_position": [11]},
            "position 0",
        ),
    ],
)
def test_vllm_metrics_counter_claims(counters: dict[str, object], expected: str | None) -> None:
    problem = VLLM.counters_problem(counters, 100, SpecConfig(3, 1, 4))
    assert (problem is None) if expected is None else (expected in str(problem)), problem


def test_server_info_text_reaches_specbench_only_printable() -> None:
    from specbench.harness.sglang import SGLANG

    hostile = {"version": "0.5\x1b[31mred\x1b]0;title\x07\x1b[2J", "served_model_name": "m\x1b[2J"}
    with FaultServer("ok", server_info=hostile) as server:
        info = SGLANG.fetch_info(server.endpoint)
    assert "\x1b" not in info["version"] and "\x07" not in info["version"]
    assert (
        info["version"].startswith("0.5\\x1b[31mred") and info["served_model_name"] == "m\\x1b[2J"
    )


def test_the_prefills_token_is_no_verify_steps() -> None:
    """serve-sim's 2-1-3 streamed 16 tokens in 5 verify steps (1 from the prefill, 5 x 3
    from the steps) and about one run in three was failed as impossible."""
    view = _view(config=SpecConfig(2, 1, 3), streamed_tokens=16, max_new_tokens=16)
    assert verify_steps_problem(view, 16, 5) is None
    problem = verify_steps_problem(view, 17, 5)
    assert problem is not None and "at least 6 steps" in problem
