"""The OpenAI-compatible streaming client against a replay of recorded vLLM streams."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from specbench.errors import ServerError
from specbench.harness.backend import LoadSpec
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.metrics import summarize
from specbench.harness.prompts import Prompt
from specbench.harness.vllm import VLLM
from tests.support.vllm_replay import SEEN, Servers, replay_app, servers


@pytest.fixture
def serve() -> Iterator[Servers]:
    with servers() as start:
        yield start


PROMPTS = [Prompt("count-0", "chat", "3 4 5 6 7 8"), Prompt("chat-1", "chat", "hi", chat=True)]


def test_records_carry_tokens_stats_itl_and_output(serve) -> None:  # type: ignore[no-untyped-def]
    app = replay_app("eagle3-k3.completions.stream.txt")
    url = serve(app)
    load = LoadSpec(concurrency=2, prompts=PROMPTS, max_new_tokens=24, warmup_requests=0)
    records = run_closed_loop(url, load, engine=VLLM)
    assert len(records) == 2 and all(r.ok for r in records)
    for record in records:
        assert record.completion_tokens == 24 and record.prompt_tokens == 6
        assert record.spec_verify_ct == 6 and record.spec_accepted_tokens == 18
        assert len(record.itl_ms) == 23  # one entry per token after the first
        assert record.output_head is not None and record.output_head.startswith("\nrepeat::")
        assert record.output_sha256 is not None
    assert summarize(records).tau == pytest.approx(4.0)
    bodies = app[SEEN]
    assert {("messages" in b) for b in bodies} == {True, False}
    assert all(b["model"] == "tiny-llama" and b["ignore_eos"] is True for b in bodies)


def test_a_coalesced_stream_has_no_decode_speed(serve) -> None:  # type: ignore[no-untyped-def]
    """All 24 tokens in one chunk: TTFT is the whole wait and no decode speed was seen
    (not 23 tokens over the microseconds between that chunk and [DONE])."""
    url = serve(replay_app("eagle3-k3.completions.stream.txt", coalesce=True))
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=24, warmup_requests=0)
    (record,) = run_closed_loop(url, load, engine=VLLM)
    assert record.ok and record.completion_tokens == 24 and record.first_chunk_tokens == 24
    assert record.itl_ms == [0.0] * 23
    assert record.output_tokens_per_s is None
    assert summarize([record]).tau == pytest.approx(4.0)


def test_stream_cut_before_done_is_a_failed_request(serve) -> None:  # type: ignore[no-untyped-def]
    url = serve(replay_app("eagle3-k3.completions.stream.txt", cut_after=4))
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=24, warmup_requests=0)
    (record,) = run_closed_loop(url, load, engine=VLLM)
    assert record.error is not None and "before [DONE]" in record.error


def test_unreachable_server_is_a_server_error() -> None:
    load = LoadSpec(concurrency=1, prompts=PROMPTS[:1], max_new_tokens=8, warmup_requests=0)
    with pytest.raises(ServerError):
        run_closed_loop("http://127.0.0.1:9", load, engine=VLLM)


def test_warm_up_has_its_own_budget_and_the_counters_are_read_after_it(serve) -> None:  # type: ignore[no-untyped-def]
    app = replay_app("eagle3-k3.completions.stream.txt")
    url = serve(app)
    load = LoadSpec(
        concurrency=1,
        prompts=PROMPTS[:1],
        max_new_tokens=24,
        warmup_requests=1,
        warmup_max_new_tokens=5,
    )
    requests_at_start: list[int] = []
    (record,) = run_closed_loop(
        url, load, engine=VLLM, on_measure_start=lambda: requests_at_start.append(len(app[SEEN]))
    )
    bodies = app[SEEN]
    assert requests_at_start == [1]  # after the warm-up request, before the measured one
    assert [b["max_tokens"] for b in bodies] == [load.warmup_tokens, 24]
    assert record.ok and record.connect_ms is not None and record.connect_ms >= 0
