"""The Backend / Session contract every measurement goes through.

The sweep, the CLI and the tests only ever talk to these two abstract classes, so that
the same search, metrics and report code runs against a real SGLang server, an attached
endpoint, the in-process simulator or ``serve-sim``. Keeping the contract this small
(start one configuration, run a closed-loop load, stop) is what lets a simulated run and
a real run be compared field by field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, ServerError
from specbench.harness.loads import RateRun
from specbench.harness.prompts import Prompt
from specbench.harness.rate_metrics import OpenLoopRun
from specbench.limits import check_bound
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig

#: Called as requests finish with (done, total); drives the rich progress bars.
ProgressCallback = Callable[[int, int], None]
#: Called about once a second with (requests in flight for longer than after_s, after_s),
#: so a hung server is visible while it hangs instead of after the request timeout.
StallCallback = Callable[[int, float], None]


class LoadFailedError(ServerError):
    """The server died during a load; ``records`` are the requests that finished first.

    They are real measurements of the configuration up to the crash, so the sweep keeps
    them in requests.jsonl (and a retry measures the load again from the start).
    """

    def __init__(
        self, message: str, log_tail: str = "", records: Sequence[RequestRecord] = ()
    ) -> None:
        super().__init__(message, log_tail)
        self.records = list(records)


@dataclass(frozen=True)
class LoadSpec:
    """One closed-loop load: how many streams, which prompts, how long each answer is.

    Closed loop (a new request starts when one finishes) rather than an arrival rate,
    because speculation's benefit depends on the running batch size, and a fixed
    concurrency pins the batch size the result is reported at.
    """

    concurrency: int
    prompts: Sequence[Prompt]
    max_new_tokens: int = 256
    #: Requests run first and discarded: the first requests pay for CUDA graph capture,
    #: cache allocation and JIT, which would otherwise pollute TTFT and tokens/s. At
    #: least ``concurrency`` of them run at once, so that every connection is open and
    #: the batch has run at its full size before timing starts (SGLang's
    #: bench_speculative also warms up at the full batch size).
    warmup_requests: int = 2
    #: Tokens per warm-up answer: enough to run decode steps at the full batch, short
    #: enough that a warm-up at c=32 costs little.
    warmup_max_new_tokens: int = 16
    request_timeout_s: float = 600.0
    #: None: every prompt exactly once; otherwise cycle through the prompts.
    num_requests: int | None = None
    #: Send every prompt through the chat API (OpenAI-style engines), not only those
    #: the dataset gave as messages.
    chat_template: bool = False

    def __post_init__(self) -> None:
        # Checked here so every backend rejects the same nonsense with the same message;
        # the concurrency's range is the CLI's (one table, specbench.limits).
        check_bound("--concurrency", self.concurrency)
        if self.max_new_tokens < 1:
            raise BadInputError(f"max_new_tokens must be >= 1 (got {self.max_new_tokens})")
        if self.warmup_requests < 0:
            raise BadInputError(f"warmup_requests must be >= 0 (got {self.warmup_requests})")
        if self.warmup_max_new_tokens < 1:
            raise BadInputError(
                f"warmup_max_new_tokens must be >= 1 (got {self.warmup_max_new_tokens})"
            )
        if self.request_timeout_s <= 0:
            raise BadInputError(f"request_timeout_s must be > 0 (got {self.request_timeout_s})")
        if self.num_requests is not None and self.num_requests < 1:
            raise BadInputError(f"num_requests must be >= 1 (got {self.num_requests})")
        if not self.prompts:
            raise BadInputError("the load has no prompts")

    @property
    def total_requests(self) -> int:
        """Measured requests (warm-up excluded)."""
        return len(self.prompts) if self.num_requests is None else self.num_requests

    def request_prompts(self) -> list[Prompt]:
        """The measured requests' prompts in issue order (cycling when num_requests > len).

        Shared by every backend so that the sim and a real server see the same sequence.
        """
        n = len(self.prompts)
        return [self.prompts[i % n] for i in range(self.total_requests)]

    def warmup_prompts(self) -> list[Prompt]:
        """Warm-up prompts, at least one per stream (none when ``warmup_requests`` is 0),
        taken from the end of the list so they differ from the first measured requests
        (a prefix-cache hit would flatter the first measured TTFT)."""
        n = len(self.prompts)
        count = max(self.warmup_requests, self.concurrency) if self.warmup_requests else 0
        return [self.prompts[(n - 1 - i) % n] for i in range(count)]

    @property
    def warmup_tokens(self) -> int:
        """Tokens per warm-up answer."""
        return min(self.max_new_tokens, self.warmup_max_new_tokens)


class Session(ABC):
    """One running server (or simulator) with one configuration.

    A session outlives many loads (one per concurrency) because launching a large model
    takes minutes; flush_cache between loads keeps them independent.
    """

    #: The configuration this server runs; None is the no-speculation baseline.
    config: SpecConfig | None
    #: Base URL of the server, or None for an in-process simulator.
    endpoint: str | None
    #: Acceptance of the last load (``acceptance_stats.load_acceptance``), where the
    #: session can tell; None otherwise.
    last_acceptance: dict[str, Any] | None = None

    @abstractmethod
    def run(
        self,
        load: LoadSpec,
        progress: ProgressCallback | None = None,
        stalls: StallCallback | None = None,
    ) -> list[RequestRecord]:
        """Run the load and return one record per measured request.

        Warm-up requests are not returned. Every record has ``concurrency`` set. A
        request that fails carries ``error`` instead of raising, so one bad request
        does not throw away the rest of a trial; a dead server raises ServerError
        because nothing after it could be trusted.
        """

    def run_rate(self, run: RateRun, progress: ProgressCallback | None = None) -> OpenLoopRun:
        """Send ``run``'s requests at its load's send times, whatever the server does
        with them (open loop), after a short closed-loop warm-up; records in issue order.

        Sessions that cannot keep a schedule say so through ``Backend.runs_rate_loads``
        before a sweep starts; this default is the guard behind that check.
        """
        raise BadInputError(f"{type(self).__name__} cannot run request-rate loads")

    @abstractmethod
    def flush_cache(self) -> None:
        """Drop prefix caches and server-wide counters so the next load starts cold."""

    @abstractmethod
    def server_info(self) -> dict[str, Any]:
        """What the server says about itself (version, flags); stored with the trial."""


class Backend(ABC):
    """A way of obtaining servers: launch SGLang, attach to one, or simulate."""

    #: The engine's registry name, stored in the manifest (sim, sglang, vllm, ...).
    name: str
    #: True when every number it produces comes from the performance model, so reports
    #: can label them SIMULATED.
    simulated: bool
    #: Whether its sessions run request-rate loads (``Session.run_rate``).
    runs_rate_loads: bool = False

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend and hardware description for the manifest (backend, simulated,
        hardware, interconnect_class, tp, ...)."""

    @abstractmethod
    def session(
        self, config: SpecConfig | None, *, log_path: Path
    ) -> AbstractContextManager[Session]:
        """A context manager that starts (or attaches to) a server for ``config``.

        It waits until the server is ready, yields the session, and always stops the
        server on exit, error or interrupt (no orphan processes). A server that fails
        to start raises ServerError carrying the tail of ``log_path``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release anything the backend holds across sessions (default: nothing)."""


__all__ = [
    "Backend",
    "LoadFailedError",
    "LoadSpec",
    "ProgressCallback",
    "Session",
    "StallCallback",
]
