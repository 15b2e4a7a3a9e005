"""The in-process simulated backend: a whole sweep on a laptop, on a virtual clock.

Every number it produces comes from the performance model (records carry
``simulated=True``). It exists so that the sweep, the report and the gate can be
developed, tested and demonstrated without a GPU, and so that a sweep can be rehearsed
(how many trials, which concurrencies) before spending GPU hours.

Time is virtual: the closed loop advances a clock by each scheduler step's modelled
duration, so a 60-request run finishes in milliseconds of CPU whatever the simulated
latency. Client-side timings follow the load generator's conventions exactly (see
``specbench.harness.loadgen``): ``ttft_ms`` to the first token, ``itl_ms`` one entry per
token after the first, a chunk of ``k`` tokens after a gap of ``g`` ms giving ``k``
entries of ``g / k`` (so a simulated run and a run against serve-sim give the same ITL
samples and ``sum(itl_ms) == e2e_ms - ttft_ms``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.backend import (
    Backend,
    LoadSpec,
    ProgressCallback,
    Session,
    StallCallback,
)
from specbench.harness.loads import RateRun
from specbench.harness.prompts import DEFAULT_DOMAIN, Prompt, estimate_tokens
from specbench.harness.rate_metrics import OpenLoopRun
from specbench.harness.sim_engine import EngineModel, SimEngine, StepResult
from specbench.model import DOMAINS
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig, config_key


class _HardwareLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def interconnect_class(self) -> str: ...

    @property
    def tp(self) -> int: ...


class _TargetLike(Protocol):
    @property
    def name(self) -> str: ...


class SimModel(EngineModel, Protocol):
    """What SimBackend needs from specbench.model.PerformanceModel: the engine's
    methods plus the hardware and target it describes in the manifest."""

    @property
    def hardware(self) -> _HardwareLike: ...

    @property
    def target(self) -> _TargetLike: ...


def acceptance_domain(domain: str) -> str:
    """The model domain whose acceptance a prompt's domain is simulated with.

    User datasets may label prompts with any domain; the model knows chat, code and
    math. Unknown labels are simulated as chat, the least predictable of the three, so
    an unfamiliar workload is never flattered. The record keeps the original label.
    """
    return domain if domain in DOMAINS else DEFAULT_DOMAIN


@dataclass
class SimRequest:
    """One simulated request in flight, as the client would see it."""

    prompt: Prompt
    prompt_tokens: int
    start_s: float
    first_token_s: float | None = None
    first_chunk_tokens: int | None = None
    last_token_s: float = 0.0
    tokens: int = 0
    verify_ct: int = 0
    itl_ms: list[float] = field(default_factory=list)


def sim_record(
    st: SimRequest, now: float, error: str | None, key: str, spec: bool, *, concurrency: int
) -> RequestRecord:
    """The record of a finished (or aborted) simulated request at virtual time ``now``."""
    ttft = None if st.first_token_s is None else (st.first_token_s - st.start_s) * 1000.0
    verify_ct = st.verify_ct if spec else None
    return RequestRecord(
        prompt_id=st.prompt.id,
        domain=st.prompt.domain,
        prompt_tokens=st.prompt_tokens,
        completion_tokens=st.tokens,
        spec_verify_ct=verify_ct,
        ttft_ms=ttft,
        e2e_ms=(now - st.start_s) * 1000.0,
        itl_ms=st.itl_ms,
        spec_accept_length=(st.tokens / verify_ct) if verify_ct else None,
        error=error,
        config_key=key,
        concurrency=concurrency,
        simulated=True,
        started_at=st.start_s,
        first_chunk_tokens=st.first_chunk_tokens,
    )


def absorb_step(active: Mapping[str, SimRequest], result: StepResult, now: float) -> None:
    """Take one scheduler step's tokens and verify counts into the requests in flight,
    with the load generator's ITL convention (see the module docstring)."""
    for rid, n in result.tokens.items():
        st = active[rid]
        if st.first_token_s is None:
            st.first_token_s = now
            if n > 1:  # extra tokens in the first chunk arrive with the first one
                st.itl_ms.extend([0.0] * (n - 1))
                st.first_chunk_tokens = n
        else:
            gap = (now - st.last_token_s) * 1000.0 / n
            st.itl_ms.extend([gap] * n)
        st.last_token_s = now
        st.tokens += n
    for rid, v in result.verify.items():
        active[rid].verify_ct += v


def run_closed_loop_sim(
    engine: SimEngine,
    prompts: Sequence[Prompt],
    *,
    concurrency: int,
    max_new_tokens: int,
    timeout_s: float,
    id_prefix: str,
    progress: ProgressCallback | None = None,
) -> list[RequestRecord]:
    """Run ``prompts`` through ``engine`` keeping ``concurrency`` requests in flight.

    A request is issued the moment another one finishes (at the end of the step that
    finished it) and is prefilled in the next step. Records come back in completion
    order, like the real load generator's.
    """
    spec = engine.config is not None
    key = config_key(engine.config)
    queue: deque[tuple[str, Prompt]] = deque(
        (f"{id_prefix}-{i}-{p.id}", p) for i, p in enumerate(prompts)
    )
    active: dict[str, SimRequest] = {}
    records: list[RequestRecord] = []
    total = len(queue)

    def finish(rid: str, error: str | None) -> None:
        records.append(
            sim_record(active.pop(rid), engine.now_s, error, key, spec, concurrency=concurrency)
        )
        if progress is not None:
            progress(len(records), total)

    while queue or active:
        while queue and len(active) < concurrency:
            rid, prompt = queue.popleft()
            tokens = estimate_tokens(prompt.text)
            engine.admit(rid, tokens, max_new_tokens, acceptance_domain(prompt.domain))
            active[rid] = SimRequest(prompt, tokens, start_s=engine.now_s)
        result = engine.step()
        now = engine.now_s
        absorb_step(active, result, now)
        for rid in result.finished:
            finish(rid, None)
        for rid in [r for r, st in active.items() if now - st.start_s > timeout_s]:
            engine.abort(rid)
            finish(rid, f"timed out after {timeout_s:g} s (simulated)")
    return records


class SimSession(Session):
    """One simulated server: a SimEngine whose clock keeps running across loads."""

    def __init__(
        self,
        backend: SimBackend,
        config: SpecConfig | None,
        log_path: Path,
        *,
        adaptive: AdaptiveSpec | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.endpoint = None
        self._backend = backend
        self._log_path = log_path
        self._engine = SimEngine(
            backend.model,
            config,
            seed=backend.seed if seed is None else seed,
            adaptive=adaptive,
        )
        self._runs = 0

    def run(
        self,
        load: LoadSpec,
        progress: ProgressCallback | None = None,
        stalls: StallCallback | None = None,
    ) -> list[RequestRecord]:
        # On the virtual clock nothing stalls: ``stalls`` is never called.
        self._runs += 1
        prefix = f"c{load.concurrency}-r{self._runs}"
        common: dict[str, Any] = {
            "concurrency": load.concurrency,
            "max_new_tokens": load.max_new_tokens,
            "timeout_s": load.request_timeout_s,
        }
        warmup = load.warmup_prompts()
        if warmup:
            warm = {**common, "max_new_tokens": load.warmup_tokens}
            run_closed_loop_sim(self._engine, warmup, id_prefix=f"{prefix}-warmup", **warm)
        records = run_closed_loop_sim(
            self._engine, load.request_prompts(), id_prefix=prefix, progress=progress, **common
        )
        self._log(
            f"load concurrency={load.concurrency} requests={len(records)} "
            f"errors={sum(1 for r in records if not r.ok)} virtual_clock_s={self._engine.now_s:.3f}"
        )
        return records

    def run_rate(self, run: RateRun, progress: ProgressCallback | None = None) -> OpenLoopRun:
        """The load's arrivals through the engine's scheduler on its virtual clock."""
        from specbench.harness.sim_open_loop import run_open_loop_sim

        self._runs += 1
        prefix = f"r{run.load.rate_per_s:g}-r{self._runs}"
        if run.warmup_prompts:
            run_closed_loop_sim(
                self._engine,
                run.warmup_prompts,
                concurrency=len(run.warmup_prompts),
                max_new_tokens=run.warmup_tokens,
                timeout_s=run.request_timeout_s,
                id_prefix=f"{prefix}-warmup",
            )
        result = run_open_loop_sim(
            self._engine,
            run.prompts,
            run.load,
            max_new_tokens=run.max_new_tokens,
            timeout_s=run.request_timeout_s,
            id_prefix=prefix,
        )
        if progress is not None:
            progress(len(result.records), len(run.prompts))
        self._log(
            f"load {run.load.label} requests={len(result.records)} "
            f"errors={sum(1 for r in result.records if not r.ok)} "
            f"virtual_clock_s={self._engine.now_s:.3f}"
        )
        return result

    def flush_cache(self) -> None:
        """Nothing is cached in the simulator; kept for the contract."""

    def server_info(self) -> dict[str, Any]:
        return {
            **self._backend.describe(),
            "config_key": config_key(self.config),
            "speculative": self.config is not None,
            "virtual_clock_s": self._engine.now_s,
        }

    def _log(self, line: str) -> None:
        with self._log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"[sim] {line}\n")


class SimBackend(Backend):
    """Sessions backed by the performance model; nothing is launched."""

    name = "sim"
    simulated = True
    runs_rate_loads = True

    def __init__(self, model: SimModel, *, seed: int = 0) -> None:
        self.model = model
        self.seed = seed

    def describe(self) -> dict[str, Any]:
        hw = self.model.hardware
        return {
            "backend": self.name,
            "simulated": True,
            "hardware": hw.name,
            "interconnect_class": hw.interconnect_class,
            "tp": hw.tp,
            "target": self.model.target.name,
        }

    def session(
        self, config: SpecConfig | None, *, log_path: Path
    ) -> AbstractContextManager[Session]:
        return self._session(config, Path(log_path))

    def seeded_session(
        self,
        config: SpecConfig | None,
        adaptive: AdaptiveSpec | None,
        *,
        log_path: Path,
        seed: int,
    ) -> AbstractContextManager[Session]:
        """A simulated server launched at ``config`` whose chain, with ``adaptive``, then
        follows the batch size as it says; ``seed`` draws its acceptance (a repeat's own)."""
        return self._session(config, Path(log_path), adaptive=adaptive, seed=seed)

    @contextmanager
    def _session(
        self,
        config: SpecConfig | None,
        log_path: Path,
        *,
        adaptive: AdaptiveSpec | None = None,
        seed: int | None = None,
    ) -> Iterator[Session]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        session = SimSession(self, config, log_path, adaptive=adaptive, seed=seed)
        what = config_key(config) if adaptive is None else f"adaptive {adaptive.name}"
        session._log(
            f"SIMULATED server for {what} "
            f"(target {self.model.target.name}, hardware {self.model.hardware.name}, "
            f"seed {self.seed}): no process launched"
        )
        try:
            yield session
        finally:
            session._log("stopped")


__all__ = [
    "SimBackend",
    "SimModel",
    "SimRequest",
    "SimSession",
    "absorb_step",
    "acceptance_domain",
    "run_closed_loop_sim",
    "sim_record",
]
