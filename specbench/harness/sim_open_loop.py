"""Open-loop (request-rate) loads through the simulator's scheduler, on its virtual clock.

Requests arrive at their load's send offsets whatever the engine is doing, so queueing
is part of the result: a request that arrives during a step waits for it to end (its
TTFT counts the wait, as a real server's would), and past the engine's capacity the
batch grows and every step slows. ``max_concurrency`` holds a due request in the client
until one in flight finishes (vllm bench serve's ``--max-concurrency``); its latencies
are then timed from when it was sent, and the wait shows as send time minus due time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from specbench.harness.loads import RateLoad
from specbench.harness.prompts import Prompt, estimate_tokens
from specbench.harness.rate_metrics import OpenLoopRun
from specbench.harness.sim_backend import SimRequest, absorb_step, acceptance_domain, sim_record
from specbench.harness.sim_engine import SimEngine
from specbench.rundir.records import RequestRecord
from specbench.spec_config import config_key


def run_open_loop_sim(
    engine: SimEngine,
    prompts: Sequence[Prompt],
    load: RateLoad,
    *,
    max_new_tokens: int,
    timeout_s: float,
    id_prefix: str,
) -> OpenLoopRun:
    """Send ``prompts`` at ``load``'s offsets through ``engine``; records in issue order."""
    spec = engine.config is not None
    key = config_key(engine.config)
    cap = load.max_in_flight
    n = len(prompts)
    due = load.send_offsets_s(n)
    t0 = engine.now_s
    sent = [0.0] * n
    out: list[RequestRecord | None] = [None] * n
    #: In flight, in admission order: their start times never decrease (a request starts
    #: when due, or later when the cap held it), so the first is the oldest.
    active: dict[str, SimRequest] = {}
    index_of: dict[str, int] = {}
    waiting: deque[tuple[int, bool]] = deque()  # (index, held by the cap)
    arrived = 0

    def admit(now: float) -> None:
        while waiting and (cap is None or len(active) < cap):
            index, held = waiting.popleft()
            prompt = prompts[index]
            rid = f"{id_prefix}-{index}-{prompt.id}"
            tokens = estimate_tokens(prompt.text)
            engine.admit(rid, tokens, max_new_tokens, acceptance_domain(prompt.domain))
            start = now if held else t0 + due[index]
            sent[index] = start - t0
            active[rid] = SimRequest(prompt, tokens, start_s=start)
            index_of[rid] = index
        if cap is not None:
            for i, (index, _) in enumerate(waiting):
                waiting[i] = (index, True)

    def finish(rid: str, error: str | None) -> None:
        st, index = active.pop(rid), index_of.pop(rid)
        out[index] = sim_record(st, engine.now_s, error, key, spec, concurrency=cap or 0)

    while arrived < n or waiting or active:
        if not active and not waiting and not engine.has_work:
            engine.idle_until(t0 + due[arrived])
        now = engine.now_s
        full = cap is not None and len(active) >= cap
        while arrived < n and t0 + due[arrived] <= now:
            waiting.append((arrived, full))
            arrived += 1
        admit(now)
        if not active:
            continue
        result = engine.step()
        now = engine.now_s
        absorb_step(active, result, now)
        for rid in result.finished:
            finish(rid, None)
        while active:
            oldest = next(iter(active))
            if now - active[oldest].start_s <= timeout_s:
                break
            engine.abort(oldest)
            finish(oldest, f"timed out after {timeout_s:g} s (simulated)")
    records = [r for r in out if r is not None]
    # On the virtual clock the client's timer fires exactly when a request is due.
    return OpenLoopRun(records, due_s=list(due), fired_s=list(due), sent_s=sent)


__all__ = ["run_open_loop_sim"]
