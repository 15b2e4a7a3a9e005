"""``specbench serve-sim``: an HTTP server that speaks SGLang's native API, in simulation.

It exists so that the real client path (launch, readiness, streaming, records, metrics,
flush, shutdown) can be exercised end to end without a GPU, and so that users can try a
sweep before they have hardware. Latencies come from the performance model through the
shared SimEngine, stepped in real time: each scheduler iteration sleeps for the model's
iteration time multiplied by ``time_scale``, so tokens stream at the simulated pace
(``time_scale`` < 1 compresses time; ratios such as speedup are unaffected).

Everything it returns is SIMULATED and says so: the ``X-Specbench-Simulated`` header on
every response, ``specbench_simulated`` in every JSON body and in ``meta_info``, and a
comment at the top of ``/metrics``. Generated text is deterministic filler words; only
the counts and timings mean anything. ``ignore_eos`` is implied: the simulated model has
no end-of-sequence token, so every request generates ``max_new_tokens``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from aiohttp import web

from specbench import __version__
from specbench.errors import BadInputError
from specbench.harness.prompts import estimate_tokens
from specbench.spec_config import SpecConfig, make_config

if TYPE_CHECKING:
    from specbench.model import HardwareProfile, PerformanceModel, TargetPreset

READY_LINE = "The server is fired up and ready to roll!"
SIM_HEADER = "X-Specbench-Simulated"
#: SGLang's default ``max_new_tokens`` when a request does not set it.
DEFAULT_MAX_NEW_TOKENS = 128
#: SGLang refreshes its server-wide accept length every 40 decode steps; gen_throughput
#: in /metrics is averaged over the same window.
LOG_INTERVAL_STEPS = 40

_FILLER = (
    "the", "model", "is", "simulated", "and", "this", "text", "carries", "no", "meaning",
    "only", "token", "counts", "and", "timings", "are", "measured", "here", "by", "specbench",
)  # fmt: skip
_RID_DOMAIN = re.compile(r"^specbench-([a-z]+)-")
_CODE_HINTS = re.compile(r"```|\bdef |\bclass |\bfunction\b|\bcode\b|\bpython\b|\bimplement", re.I)
_MATH_HINTS = re.compile(r"\bsolve\b|\bprove\b|\bcompute\b|\bcalculate\b|\d\s*[-+*/^=]\s*\d", re.I)


def filler_text(num_tokens: int) -> str:
    """Deterministic text of ``num_tokens`` words (one word per simulated token)."""
    return " ".join(_FILLER[i % len(_FILLER)] for i in range(num_tokens))


def filler_ids(num_tokens: int) -> list[int]:
    """Deterministic token ids, one per simulated token.

    SGLang sends every output id so far in each streamed chunk; serve-sim does too, so
    that its chunks grow with the answer the way a real server's do.
    """
    return [_filler_id(i) for i in range(num_tokens)]


def _filler_id(index: int) -> int:
    return 1000 + index % len(_FILLER)


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


@dataclass
class _Request:
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


class SimServer:
    """The simulated server's state: one SimEngine, a scheduler task, the HTTP routes."""

    def __init__(self, options: SimServerOptions, model: PerformanceModel) -> None:
        from specbench.harness.sim_engine import SimEngine

        self.options = options
        self.model = model
        self.config = options.config
        self.engine = SimEngine(model, options.config, seed=options.seed)
        self.time_scale = options.time_scale
        self.ready = False
        self.started = time.time()
        #: Requests the engine is still generating.
        self._requests: dict[str, _Request] = {}
        #: Requests whose HTTP handler is still waiting for updates.
        self._known: dict[str, _Request] = {}
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
        from specbench.model import DOMAINS

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
            await asyncio.sleep(step.duration_s * self.time_scale)
            self.sim_time_s += step.duration_s
            step_tokens = 0
            changed: set[str] = set()
            for rid, n in step.tokens.items():
                req = self._requests.get(rid)
                if req is None or n <= 0:
                    continue
                req.completion_tokens += n
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

    def admit(self, rid: str, prompt_tokens: int, max_new_tokens: int, domain: str) -> _Request:
        req = _Request(rid, prompt_tokens, max_new_tokens, domain, created=time.time())
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
    def meta_info(self, req: _Request) -> dict[str, Any]:
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
        if req.finished and req.finished_at is not None:
            meta["e2e_latency"] = req.finished_at - req.created
        meta["specbench_simulated"] = True
        return meta

    def server_info(self) -> dict[str, Any]:
        target = self.options.target
        cfg = self.config
        tp = self.options.tp if self.options.tp is not None else self.options.hardware.tp
        internal: dict[str, Any] = {"last_gen_throughput": self.gen_throughput()}
        if cfg is not None:
            internal["avg_spec_accept_length"] = self._avg_accept_length
        return {
            "model_path": target.model_path,
            "served_model_name": target.model_path,
            "host": self.options.host,
            "port": self.options.port,
            "tp_size": tp,
            "speculative_algorithm": target.algorithm if cfg is not None else None,
            "speculative_draft_model_path": target.draft_model_path if cfg is not None else None,
            "speculative_num_steps": cfg.num_steps if cfg else None,
            "speculative_eagle_topk": cfg.topk if cfg else None,
            "speculative_num_draft_tokens": cfg.num_draft_tokens if cfg else None,
            "internal_states": [internal],
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


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": {"message": message}, "specbench_simulated": True}, status)


def build_app(server: SimServer) -> web.Application:
    """The aiohttp application: SGLang's native routes, all labelled simulated."""

    @web.middleware
    async def label(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[SIM_HEADER] = "true"
            raise
        if not response.prepared:
            response.headers[SIM_HEADER] = "true"
        return response

    async def health(request: web.Request) -> web.Response:
        if not server.ready:
            return web.Response(status=503, text="starting (simulated)\n")
        return web.Response(status=200, text="ok (simulated)\n")

    async def server_info(request: web.Request) -> web.Response:
        return _json(server.server_info())

    async def model_info(request: web.Request) -> web.Response:
        return _json(
            {
                "model_path": server.options.target.model_path,
                "is_generation": True,
                "specbench_simulated": True,
            }
        )

    async def flush_cache(request: web.Request) -> web.Response:
        if not server.flush():
            return web.Response(
                status=400,
                text="Cache not flushed: requests are pending (simulated server).\n",
            )
        return web.Response(status=200, text="Cache flushed (simulated server).\n")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=server.metrics_text(), content_type="text/plain")

    async def generate(request: web.Request) -> web.StreamResponse:
        if not server.ready:
            return _error("the server is still starting", 503)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error("the request body is not JSON", 400)
        if not isinstance(body, dict):
            return _error("the request body must be a JSON object", 400)
        text = body.get("text")
        input_ids = body.get("input_ids")
        if isinstance(text, str):
            prompt_tokens = estimate_tokens(text)
        elif isinstance(input_ids, list) and input_ids and not isinstance(input_ids[0], list):
            prompt_tokens = len(input_ids)
            text = ""
        else:
            return _error("serve-sim takes one prompt per request: 'text' must be a string", 400)
        params = body.get("sampling_params") or {}
        if not isinstance(params, dict):
            return _error("'sampling_params' must be an object", 400)
        max_new = params.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
            return _error("'max_new_tokens' must be a positive integer", 400)
        rid = body.get("rid")
        if rid is not None and not isinstance(rid, str):
            return _error("'rid' must be a string", 400)
        domain = guess_domain(rid, text, server.domains)
        rid = rid or server.next_rid()
        if server.is_known(rid):
            return _error(f"duplicate request id {rid!r}", 400)
        req = server.admit(rid, prompt_tokens, max_new, domain)
        try:
            if body.get("stream"):
                return await _stream(request, server, req)
            while not req.finished:
                await req.updates.get()
        finally:
            server.forget(rid)
        return _json(
            {
                "text": filler_text(req.completion_tokens),
                "output_ids": filler_ids(req.completion_tokens),
                "meta_info": server.meta_info(req),
            }
        )

    app = web.Application(middlewares=[label])
    app.router.add_get("/health", health)
    app.router.add_get("/health_generate", health)
    app.router.add_get("/server_info", server_info)
    app.router.add_get("/get_server_info", server_info)
    app.router.add_get("/get_model_info", model_info)
    app.router.add_get("/model_info", model_info)
    app.router.add_route("*", "/flush_cache", flush_cache)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/generate", generate)
    app.router.add_put("/generate", generate)
    return app


async def _stream(request: web.Request, server: SimServer, req: _Request) -> web.StreamResponse:
    """SSE like SGLang: ``data: {json}`` per update with cumulative text and output
    ids, then [DONE]."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", SIM_HEADER: "true"})
    await response.prepare(request)
    words: list[str] = []
    ids: list[int] = []
    while True:
        finished = await req.updates.get()
        # Drain updates that piled up while the client was slow: one chunk per read.
        while not req.updates.empty():
            finished = req.updates.get_nowait() or finished
        while len(words) < req.completion_tokens:
            words.append(_FILLER[len(words) % len(_FILLER)])
            ids.append(_filler_id(len(ids)))
        chunk = {"text": " ".join(words), "output_ids": ids, "meta_info": server.meta_info(req)}
        # A client that went away raises here; the engine finishes the request on its own.
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if finished or req.finished:
            break
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


# -- running the server ---------------------------------------------------------------------
def build_model(options: SimServerOptions) -> PerformanceModel:
    from specbench.model import PerformanceModel

    return PerformanceModel(options.target, options.hardware, seed=options.seed)


async def serve_async(
    options: SimServerOptions, *, out: TextIO | None = None, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); the port must be free."""
    out = out if out is not None else sys.stdout
    from specbench.harness.sglang_backend import check_port_free

    check_port_free(options.host, options.port)
    model = build_model(options)
    server = SimServer(options, model)
    app = build_app(server)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise BadInputError(
            f"port {options.port} is already in use on {options.host}"
            if "in use" in str(exc).lower() or getattr(exc, "errno", None) == 98
            else f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
        ) from None
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    scheduler = asyncio.ensure_future(server.scheduler())
    cfg = options.config
    cfg_text = "no speculation (baseline)" if cfg is None else f"{options.target.algorithm} {cfg}"
    print(
        f"specbench serve-sim (SIMULATED, no model is loaded): target {options.target.name}, "
        f"hardware {options.hardware.name}, {cfg_text}, time scale {options.time_scale:g}, "
        f"listening on http://{options.host}:{options.port}",
        file=out,
        flush=True,
    )
    try:
        # /health_generate answers 503 while the model tables are built, as SGLang does
        # while it loads weights and captures CUDA graphs.
        await loop.run_in_executor(None, server.warm_up)
        if options.startup_delay_s > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), options.startup_delay_s)
        if not stop.is_set():
            server.ready = True
            print(READY_LINE, file=out, flush=True)
            await stop.wait()
        print("specbench serve-sim: shutting down", file=out, flush=True)
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def serve(options: SimServerOptions) -> None:
    """Blocking entry point used by the CLI."""
    if options.time_scale <= 0:
        raise BadInputError(f"--time-scale must be > 0 (got {options.time_scale:g})")
    asyncio.run(serve_async(options))


# -- options: from serve-sim's own flags and from SGLang's launch_server arguments -------------
class _ArgParser(argparse.ArgumentParser):
    """argparse that reports errors as BadInputError instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"--sglang-args: {message}")


@dataclass
class SglangArgs:
    """The subset of ``sglang.launch_server`` arguments serve-sim acts on."""

    model_path: str | None = None
    host: str | None = None
    port: int | None = None
    tp: int | None = None
    algorithm: str | None = None
    draft_model_path: str | None = None
    num_steps: int | None = None
    topk: int | None = None
    num_draft_tokens: int | None = None
    ignored: list[str] = field(default_factory=list)


def parse_sglang_args(args: Sequence[str]) -> SglangArgs:
    """Read launch_server arguments; unknown ones (memory, attention backend...) are ignored.

    This is what lets the sglang backend launch serve-sim through ``--launch-cmd`` with
    exactly the argument list it would give SGLang.
    """
    parser = _ArgParser(prog="sglang-args", add_help=False, allow_abbrev=False)
    parser.add_argument("--model-path", "--model", dest="model_path")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--tp-size", "--tp", dest="tp", type=int)
    parser.add_argument("--speculative-algorithm", dest="algorithm")
    parser.add_argument(
        "--speculative-draft-model-path", "--speculative-draft-model", dest="draft_model_path"
    )
    parser.add_argument("--speculative-num-steps", dest="num_steps", type=int)
    parser.add_argument("--speculative-eagle-topk", dest="topk", type=int)
    parser.add_argument("--speculative-num-draft-tokens", dest="num_draft_tokens", type=int)
    known, ignored = parser.parse_known_args(list(args))
    return SglangArgs(**vars(known), ignored=ignored)


def _triple_or_none(
    num_steps: int | None, topk: int | None, num_draft_tokens: int | None, where: str
) -> SpecConfig | None:
    values = (num_steps, topk, num_draft_tokens)
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise BadInputError(
            f"{where}: set all three of num-steps, topk and num-draft-tokens, or none"
        )
    assert num_steps is not None and topk is not None and num_draft_tokens is not None
    return make_config(num_steps, topk, num_draft_tokens)


def _target_for_model_path(model_path: str) -> TargetPreset | None:
    from specbench.model import list_targets, load_target

    for name in list_targets():
        preset = load_target(name)
        if preset.model_path == model_path:
            return preset
    return None


def resolve_options(
    *,
    target: str | None,
    hardware: str | None,
    num_steps: int | None = None,
    topk: int | None = None,
    num_draft_tokens: int | None = None,
    no_speculation: bool = False,
    host: str = "127.0.0.1",
    port: int = 30000,
    time_scale: float = 1.0,
    seed: int = 0,
    startup_delay_s: float = 0.0,
    sglang_args: Sequence[str] | None = None,
) -> SimServerOptions:
    """Combine serve-sim's flags with SGLang arguments into one validated option set.

    With SGLang arguments the configuration follows SGLang's rules: no
    ``--speculative-algorithm`` means no speculation, the algorithm without numbers
    means the target's auto-chosen configuration. Without them, the three numbers (or
    ``--no-speculation``) choose it, and the default is the model card's configuration.
    """
    from specbench.model import DEFAULT_SIM_PROFILE, load_hardware, load_target

    if time_scale <= 0:
        raise BadInputError(f"--time-scale must be > 0 (got {time_scale:g})")
    if startup_delay_s < 0:
        raise BadInputError(f"--startup-delay must be >= 0 (got {startup_delay_s:g})")
    direct = _triple_or_none(num_steps, topk, num_draft_tokens, "serve-sim")
    if direct is not None and no_speculation:
        raise BadInputError("--no-speculation contradicts --num-steps/--topk/--num-draft-tokens")
    sg = parse_sglang_args(sglang_args) if sglang_args is not None else None

    if target is not None:
        preset = load_target(target)
    elif sg is not None and sg.model_path:
        found = _target_for_model_path(sg.model_path)
        if found is None:
            raise BadInputError(
                f"no target preset serves --model-path {sg.model_path!r}; pass --target"
            )
        preset = found
    else:
        raise BadInputError("--target is required (e.g. --target minimax-m2.7)")

    config: SpecConfig | None
    if sg is not None:
        if direct is not None or no_speculation:
            raise BadInputError(
                "give the configuration either as serve-sim options or in --sglang-args, not both"
            )
        from_sg = _triple_or_none(sg.num_steps, sg.topk, sg.num_draft_tokens, "--sglang-args")
        if sg.algorithm:
            config = from_sg if from_sg is not None else preset.auto_config
        elif from_sg is not None:
            raise BadInputError(
                "--sglang-args: speculative numbers without --speculative-algorithm"
            )
        else:
            config = None
        host = sg.host or host
        port = sg.port if sg.port is not None else port
    else:
        config = None if no_speculation else (direct or preset.card_config)
    if not 0 < port < 65536:
        raise BadInputError(f"--port must be in 1..65535 (got {port})")
    # Like SGLang, an unset --tp-size means the deployment the target is served with, not
    # whatever TP the hardware profile happens to describe (llama-3.1-8b runs on one GPU).
    tp = sg.tp if sg is not None and sg.tp is not None else preset.default_tp
    profile = load_hardware(hardware or DEFAULT_SIM_PROFILE, tp=tp)
    return SimServerOptions(
        target=preset,
        hardware=profile,
        config=config,
        host=host,
        port=port,
        time_scale=time_scale,
        seed=seed,
        startup_delay_s=startup_delay_s,
        tp=tp,
    )


__all__ = [
    "READY_LINE",
    "SIM_HEADER",
    "SglangArgs",
    "SimServer",
    "SimServerOptions",
    "build_app",
    "filler_ids",
    "filler_text",
    "guess_domain",
    "parse_sglang_args",
    "resolve_options",
    "serve",
    "serve_async",
]
