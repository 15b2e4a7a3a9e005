"""serve-sim's scheduler: one SimEngine stepped in real time, and the server state.

serve-sim is an HTTP server that speaks SGLang's native API, in simulation.

It exists so that the real client path (launch, readiness, streaming, records, metrics,
flush, shutdown) can be exercised end to end without a GPU, and so that users can try a
sweep before they have hardware. Latencies come from the performance model through the
shared SimEngine, stepped in real time: each scheduler iteration sleeps for the model's
iteration time multiplied by ``time_scale``, so tokens stream at the simulated pace.

Wall time is not the measurement, though: at a small ``time_scale`` the fixed cost of
an event-loop turn and an HTTP chunk outweighs a compressed step, and it weighs more on
the baseline (one token per step) than on speculation, so wall-clock speedups drifted
with the scale (2.45x at c=1 for one scale, 1.69x for another). Every chunk therefore
carries the server's virtual clock (``specbench_sim_admitted_s`` and
``specbench_sim_clock_s``: model seconds at admission and at the step that produced the
chunk's tokens), and specbench's client times simulated requests on that clock. Measured
numbers are then the model's whatever the scale; ``time_scale`` only decides how long
the wait is, and is recorded (``specbench_time_scale`` in the server info, the manifest
and results.json).

Between steps the virtual clock stands still, which is right for a closed loop (a
request's HTTP turnaround is no model time). An open-loop client's arrivals are spread
in time on purpose, so it asks (``POST /specbench/clock {"follow_wall": true}``) for the
clock to follow the wall clock, divided by ``time_scale``: steps then end at their
deadline on that clock (sleeping less after a slow event-loop turn, so the host's
overhead does not stretch the virtual clock against the arrivals), an idle server's
clock catches up with the wall, and a request arriving during a step is stamped at its
point in it: queueing counts as on a real server. A host too slow for the scale falls
behind; the most it fell behind is reported when the mode is turned off.

Everything it returns is SIMULATED and says so: the ``X-Specbench-Simulated`` header on
every response, ``specbench_simulated`` in every JSON body and in ``meta_info``, and a
comment at the top of ``/metrics``. Generated text is deterministic filler words; only
the counts and timings mean anything. ``ignore_eos`` is implied: the simulated model has
no end-of-sequence token, so every request generates ``max_new_tokens``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from specbench import __version__
from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.sim_engine import SimEngine
from specbench.model import (
    DOMAINS,
    HardwareProfile,
    PerformanceModel,
    TargetPreset,
)
from specbench.spec_config import SpecConfig

READY_LINE = "The server is fired up and ready to roll!"
SIM_HEADER = "X-Specbench-Simulated"
#: SGLang's default ``max_new_tokens`` when a request does not set it.
DEFAULT_MAX_NEW_TOKENS = 128
#: SGLang refreshes its server-wide accept length every 40 decode steps; gen_throughput
#: in /metrics is averaged over the same window.
LOG_INTERVAL_STEPS = 40
#: Largest ``max_new_tokens`` served, like a real server's context length (SGLang answers
#: 400 past it). The engine draws one accept length per possible step at admission, so
#: an unbounded value (10**9) would allocate gigabytes and block the event loop, SIGTERM
#: handling included.
MAX_NEW_TOKENS = 131_072

FILLER_WORDS = (
    "the", "model", "is", "simulated", "and", "this", "text", "carries", "no", "meaning",
    "only", "token", "counts", "and", "timings", "are", "measured", "here", "by", "specbench",
)  # fmt: skip
_RID_DOMAIN = re.compile(r"^specbench-([a-z]+)-")
_CODE_HINTS = re.compile(r"```|\bdef |\bclass |\bfunction\b|\bcode\b|\bpython\b|\bimplement", re.I)
_MATH_HINTS = re.compile(r"\bsolve\b|\bprove\b|\bcompute\b|\bcalculate\b|\d\s*[-+*/^=]\s*\d", re.I)


def filler_text(num_tokens: int) -> str:
    """Deterministic text of ``num_tokens`` words (one word per simulated token)."""
    return " ".join(FILLER_WORDS[i % len(FILLER_WORDS)] for i in range(num_tokens))


def filler_ids(num_tokens: int) -> list[int]:
    """Deterministic token ids, one per simulated token.

    SGLang sends every output id so far in each streamed chunk; serve-sim does too, so
    that its chunks grow with the answer the way a real server's do.
    """
    return [filler_id(i) for i in range(num_tokens)]


def filler_id(index: int) -> int:
    return 1000 + index % len(FILLER_WORDS)


def guess_domain(rid: str | None, text: str, known: tuple[str, ...]) -> str:
    """The prompt's domain: from specbench's rid when present, else a keyword guess."""
    if rid:
        match = _RID_DOMAIN.match(rid)
        if match and match.group(1) in known:
            return match.group(1)
    if "code" in known and _CODE_HINTS.search(text):
        return "code"
    if "math" in known and _MATH_HINTS.search(text):
        return "math"
    return "chat" if "chat" in known else known[0]


@dataclass
class SimServerOptions:
    target: TargetPreset
    hardware: HardwareProfile
    config: SpecConfig | None
    host: str = "127.0.0.1"
    port: int = 30000
    time_scale: float = 1.0
    seed: int = 0
    #: Seconds /health_generate answers 503 before turning ready (exercises the waiter).
    startup_delay_s: float = 0.0
    tp: int | None = None
    #: SGLang's batch limits as launched (reported back, never enforced by the sim).
    max_running_requests: int | None = None
    cuda_graph_max_bs: int | None = None
    #: The draft it was launched with (None: the target's own).
    draft_model_path: str | None = None
    #: ``--speculative-adaptive`` (with its config or SGLang's default): the chain of
    #: each step follows the running batch size, as SGLang 0.5.23's adaptive mode.
    adaptive: AdaptiveSpec | None = None
    #: The --model-path it was started with (reported as SGLang reports its own).
    model_path: str | None = None


@dataclass
class SimRequest:
    rid: str
    prompt_tokens: int
    max_new_tokens: int
    domain: str
    created: float
    updates: asyncio.Queue[bool] = field(default_factory=asyncio.Queue)
    completion_tokens: int = 0
    verify_ct: int = 0
    finished: bool = False
    finished_at: float | None = None
    #: Virtual clock (model seconds) at admission and at the latest tokens.
    admitted_sim_s: float = 0.0
    updated_sim_s: float = 0.0


class SimServer:
    """The simulated server's state: one SimEngine, a scheduler task, the HTTP routes."""

    def __init__(self, options: SimServerOptions, model: PerformanceModel) -> None:

        self.options = options
        self.model = model
        self.config = options.config
        self.engine = SimEngine(model, options.config, seed=options.seed, adaptive=options.adaptive)
        self.time_scale = options.time_scale
        self.ready = False
        self.started = time.time()
        #: Requests the engine is still generating.
        self._requests: dict[str, SimRequest] = {}
        #: Requests whose HTTP handler is still waiting for updates.
        self._known: dict[str, SimRequest] = {}
        self._wake = asyncio.Event()
        self._counter = 0
        # server-wide counters (reset by /flush_cache, as SGLang's are)
        self._accepted_tokens = 0
        self._verify_steps = 0
        self._avg_accept_length: float | None = None
        self._decode_steps = 0
        self._window: deque[tuple[float, int]] = deque(maxlen=LOG_INTERVAL_STEPS)
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.requests_total = 0
        self.sim_time_s = 0.0
        #: Open-loop mode (see the module docstring): the clock follows the wall.
        self.follow_wall = False
        #: Where the wall and the virtual clock were when the mode was turned on, the
        #: length of the step under way (0 between steps) and the most the steps fell
        #: behind the wall (virtual seconds).
        self._sync_wall = time.monotonic()
        self._sync_sim = 0.0
        self._step_s = 0.0
        self.behind_s = 0.0

        self.domains: tuple[str, ...] = tuple(DOMAINS)

    # -- scheduler --------------------------------------------------------------------
    async def scheduler(self) -> None:
        """Run engine steps while requests are admitted; sleep the simulated time."""
        while True:
            if not self._requests:
                self._wake.clear()
                await self._wake.wait()
                continue
            step = self.engine.step()
            self._step_s = step.duration_s
            if self.follow_wall:
                end = self.sim_time_s + step.duration_s
                deadline = self._sync_wall + (end - self._sync_sim) * self.time_scale
                await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                self.behind_s = max(self.behind_s, self._wall_sim_s() - end)
            else:
                await asyncio.sleep(step.duration_s * self.time_scale)
            self.sim_time_s += step.duration_s
            self._step_s = 0.0
            step_tokens = 0
            changed: set[str] = set()
            for rid, n in step.tokens.items():
                req = self._requests.get(rid)
                if req is None or n <= 0:
                    continue
                req.completion_tokens += n
                req.updated_sim_s = self.sim_time_s
                step_tokens += n
                changed.add(rid)
            for rid, v in step.verify.items():
                req = self._requests.get(rid)
                if req is None or v <= 0:
                    continue
                req.verify_ct += v
                self._verify_steps += v
                self._accepted_tokens += step.tokens.get(rid, 0)
            now = time.time()
            for rid in step.finished:
                req = self._requests.pop(rid, None)
                if req is not None:
                    req.finished = True
                    req.finished_at = now
                    changed.add(rid)
            for rid in changed:
                # Requests whose client went away are no longer known: nobody to tell.
                known = self._known.get(rid)
                if known is not None:
                    known.updates.put_nowait(known.finished)
            self.generation_tokens_total += step_tokens
            if step.tokens and any(rid not in step.prefilled for rid in step.tokens):
                self._decode_steps += 1
                self._window.append((step.duration_s, step_tokens))
                if self._decode_steps % LOG_INTERVAL_STEPS == 0 and self._verify_steps:
                    self._avg_accept_length = self._accepted_tokens / self._verify_steps

    def _wall_sim_s(self) -> float:
        return self._sync_sim + (time.monotonic() - self._sync_wall) / self.time_scale

    def sim_now_s(self) -> float:
        """The virtual clock now: ``sim_time_s``, or in open-loop mode the wall clock's
        (scaled), kept within the step under way."""
        if not self.follow_wall:
            return self.sim_time_s
        now = max(self._wall_sim_s(), self.sim_time_s)
        return min(now, self.sim_time_s + self._step_s) if self._step_s else now

    def set_follow_wall(self, on: bool) -> float:
        """Turn open-loop mode on or off; returns how far the steps fell behind the wall
        (virtual seconds) while it was on."""
        behind = self.behind_s
        self.follow_wall = on
        self._sync_wall, self._sync_sim, self.behind_s = time.monotonic(), self.sim_time_s, 0.0
        return behind

    def admit(self, rid: str, prompt_tokens: int, max_new_tokens: int, domain: str) -> SimRequest:
        req = SimRequest(rid, prompt_tokens, max_new_tokens, domain, created=time.time())
        now = self.sim_now_s()
        if self.follow_wall and not self._requests and not self._step_s:
            self.sim_time_s = now  # idle: the clock caught up with the wall
        req.admitted_sim_s = req.updated_sim_s = now
        self.engine.admit(rid, prompt_tokens, max_new_tokens, domain)
        self._requests[rid] = req
        self._known[rid] = req
        self.prompt_tokens_total += prompt_tokens
        self.requests_total += 1
        self._wake.set()
        return req

    def warm_up(self) -> None:
        """Build the model's per-domain tables now, not inside the first requests.

        The first accept-length draw of a domain computes the acceptance tables (tens of
        milliseconds of CPU); done lazily it would block the event loop and show up as a
        TTFT outlier that no real server has after its own warm-up.
        """
        import numpy as np

        rng = np.random.default_rng(0)
        if self.config is not None:
            for domain in self.domains:
                self.model.sample_accept_lengths(self.config, domain, 1, rng)
        for batch in range(1, 65):
            self.engine.decode_time_s(batch)

    def forget(self, rid: str) -> None:
        """The HTTP handler of ``rid`` is done (answered or its client went away).

        A request still generating is aborted, as SGLang aborts a request whose client
        disconnected, so an abandoned stream does not keep inflating the batch.
        """
        self._known.pop(rid, None)
        if self._requests.pop(rid, None) is not None:
            self.engine.abort(rid)

    def is_known(self, rid: str) -> bool:
        return rid in self._known or rid in self._requests

    # -- responses --------------------------------------------------------------------
    def meta_info(self, req: SimRequest) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": req.rid,
            "finish_reason": (
                {"type": "length", "length": req.max_new_tokens} if req.finished else None
            ),
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": req.completion_tokens,
            "cached_tokens": 0,
        }
        if self.config is not None and req.finished:
            # As SGLang's tokenizer manager does: the speculative counters come only with
            # the finishing chunk, so a client must read them from the last chunk.
            meta["spec_verify_ct"] = req.verify_ct
            meta["spec_accept_rate"] = 0.0
            meta["spec_accept_length"] = 0
            if req.verify_ct > 0:
                proposed = req.verify_ct * (self.config.num_draft_tokens - 1)
                accepted = max(0, req.completion_tokens - req.verify_ct)
                meta["spec_accept_rate"] = accepted / proposed if proposed else 0.0
                meta["spec_accept_length"] = req.completion_tokens / req.verify_ct
                meta["spec_accept_token_num"] = accepted
                meta["spec_draft_token_num"] = proposed
        if req.finished:
            # On the simulated clock, like every timing serve-sim gives: a wall-clock
            # latency would bring the host's HTTP overhead back into the measurement,
            # scaled by --time-scale.
            meta["e2e_latency"] = req.updated_sim_s - req.admitted_sim_s
        meta["specbench_simulated"] = True
        meta["specbench_sim_admitted_s"] = req.admitted_sim_s
        meta["specbench_sim_clock_s"] = req.updated_sim_s
        return meta

    def server_info(self) -> dict[str, Any]:
        target = self.options.target
        cfg = self.config
        tp = self.options.tp if self.options.tp is not None else self.options.hardware.tp
        internal: dict[str, Any] = {"last_gen_throughput": self.gen_throughput()}
        if cfg is not None:
            internal["avg_spec_accept_length"] = self._avg_accept_length
        if self.engine.controller is not None:
            # The live tiers, as SGLang shows its adaptive state in internal_states.
            internal["adaptive_tiers"] = self.engine.controller.state()
        return {
            "model_path": self.options.model_path or target.model_path,
            "served_model_name": self.options.model_path or target.model_path,
            "host": self.options.host,
            "port": self.options.port,
            "tp_size": tp,
            "speculative_algorithm": target.algorithm if cfg is not None else None,
            "speculative_draft_model_path": (
                (self.options.draft_model_path or target.draft_model_path) if cfg else None
            ),
            "speculative_num_steps": cfg.num_steps if cfg else None,
            "speculative_eagle_topk": cfg.topk if cfg else None,
            "speculative_num_draft_tokens": cfg.num_draft_tokens if cfg else None,
            "speculative_adaptive": self.options.adaptive is not None,
            "speculative_adaptive_config": (
                self.options.adaptive.name if self.options.adaptive is not None else None
            ),
            "internal_states": [internal],
            "max_running_requests": self.options.max_running_requests,
            # SGLang 0.5.23's fields (ServerArgs.resolved_dict): the per-phase limit and
            # the folded per-phase config; serve-sim parses that release's flags.
            "cuda_graph_max_bs_decode": self.options.cuda_graph_max_bs,
            "cuda_graph_config": {"decode": {"max_bs": self.options.cuda_graph_max_bs}},
            "version": f"specbench-serve-sim {__version__}",
            "specbench_simulated": True,
            "specbench_target": target.name,
            "specbench_hardware": self.options.hardware.name,
            "specbench_time_scale": self.time_scale,
        }

    def gen_throughput(self) -> float:
        """Tokens per simulated second over the last window (model time, not wall time)."""
        seconds = sum(d for d, _ in self._window)
        return sum(n for _, n in self._window) / seconds if seconds > 0 else 0.0

    def metrics_text(self) -> str:
        name = self.options.target.model_path.replace('"', "")
        labels = f'{{model_name="{name}",simulated="true"}}'
        accept = self._avg_accept_length
        lines = [
            "# specbench serve-sim: every value below is SIMULATED by the performance model",
            "# HELP sglang:num_running_reqs The number of running requests.",
            "# TYPE sglang:num_running_reqs gauge",
            f"sglang:num_running_reqs{labels} {len(self._requests)}",
            "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.",
            "# TYPE sglang:num_queue_reqs gauge",
            f"sglang:num_queue_reqs{labels} 0",
            "# HELP sglang:gen_throughput The generation throughput (token/s).",
            "# TYPE sglang:gen_throughput gauge",
            f"sglang:gen_throughput{labels} {self.gen_throughput():.6g}",
            "# HELP sglang:spec_accept_length The average acceptance length of speculative decoding.",
            "# TYPE sglang:spec_accept_length gauge",
            f"sglang:spec_accept_length{labels} {accept if accept is not None else 0.0:.6g}",
            "# HELP sglang:prompt_tokens_total Number of prefill tokens processed.",
            "# TYPE sglang:prompt_tokens_total counter",
            f"sglang:prompt_tokens_total{labels} {self.prompt_tokens_total}",
            "# HELP sglang:generation_tokens_total Number of generation tokens processed.",
            "# TYPE sglang:generation_tokens_total counter",
            f"sglang:generation_tokens_total{labels} {self.generation_tokens_total}",
            "# HELP sglang:num_requests_total Number of requests processed.",
            "# TYPE sglang:num_requests_total counter",
            f"sglang:num_requests_total{labels} {self.requests_total}",
        ]
        return "\n".join(lines) + "\n"

    def flush(self) -> bool:
        """Reset server-wide counters; refused (False) while requests are pending."""
        if self._requests:
            return False
        self._accepted_tokens = 0
        self._verify_steps = 0
        self._avg_accept_length = None
        self._decode_steps = 0
        self._window.clear()
        return True

    def next_rid(self) -> str:
        self._counter += 1
        return f"sim-{self._counter}"

    @property
    def pending(self) -> int:
        return len(self._requests)
