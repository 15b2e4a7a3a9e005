"""What a sweep accepts, checked once where it enters (the CLI or an embedding program).

``SweepOptions`` holds plain values; ``check_options`` refuses invalid combinations before
anything is loaded or launched, and everything after it trusts the options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from specbench.errors import BadInputError
from specbench.harness.backend import Backend
from specbench.harness.engine import EngineAdapter
from specbench.harness.engines import AUTO, auto_engine, backend_choices, create
from specbench.harness.prompts import Prompt
from specbench.harness.server_backend import DEFAULT_READY_TIMEOUT_S
from specbench.limits import BOUNDS, check_bound, check_bounds
from specbench.spec_config import SpecConfig
from specbench.sweeps.budget import DEFAULT_LAUNCH_TIME_S
from specbench.sweeps.strategy import SAMPLERS, STRATEGIES, search_strategy

DEFAULT_TARGET = "minimax-m2.7"
DEFAULT_CONCURRENCIES: tuple[int, ...] = (1, 8, 32)
DEFAULT_NUM_PROMPTS = 16
DEFAULT_MAX_NEW_TOKENS = 256
#: A request slower than this is failed: long enough for 256 tokens on a loaded server,
#: short enough that a hung server shows up within minutes, not hours.
DEFAULT_REQUEST_TIMEOUT_S = 600.0
#: Model-predicted configurations enqueued before TPE starts.
DEFAULT_PRIOR_TOP = 5
#: Random proposals TPE makes after the enqueued ones before it starts modelling.
EXTRA_STARTUP_TRIALS = 3
#: Re-measurements of a load flagged noisy.
DEFAULT_REPEATS = 1


@dataclass
class SweepOptions:
    """Everything ``specbench sweep`` accepts, as plain values (the CLI only parses)."""

    target: str = DEFAULT_TARGET
    #: auto, an engine's name (harness.engines.backend_choices), or a ready engine.
    backend: str | EngineAdapter = AUTO
    hardware: str | None = None
    prior_hardware: str | None = None
    endpoint: str | None = None
    baseline_endpoint: str | None = None
    launch_cmd: str | None = None
    server_args: tuple[str, ...] = ()
    tp: int | None = None
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    dataset: Path | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_prompts: int | None = DEFAULT_NUM_PROMPTS
    concurrencies: tuple[int, ...] = DEFAULT_CONCURRENCIES
    strategy: str = "optuna"  # optuna | grid | fixed (endpoint mode forces "fixed")
    sampler: str = "tpe"
    configs: tuple[SpecConfig, ...] = ()
    space: str | None = None
    #: --method: the speculative methods searched (None: the preset's own, EAGLE3).
    methods: tuple[str, ...] | None = None
    trials: int | None = None  # None: 30 for optuna, every configuration for grid/fixed
    budget_minutes: float | None = None
    seed: int = 0
    out: Path | None = None
    storage: str | None = None
    #: Seconds a database that stops answering is waited for before the sweep gives up.
    storage_retry_s: float = 0.0
    study_name: str | None = None
    report: bool = True
    command: tuple[str, ...] = ()
    #: How far the simulated truth is from the model prior (0: the sim is the prior).
    sim_perturbation: float = 0.0
    prior_top: int = DEFAULT_PRIOR_TOP
    #: Times a load flagged noisy (a stall, a wide spread) is measured again.
    repeats: int = DEFAULT_REPEATS
    #: Stop measuring a configuration's higher concurrencies once its first load is
    #: clearly worse than the best; None: on for launched servers, off otherwise.
    prune: bool | None = None
    #: Calibration in the loop: refit the model after each trial, measure what it
    #: proposes and stop once it is settled; None: on for launched servers.
    stop_when_settled: bool | None = None
    #: Skip comparing each launched server's /server_info with what was asked for.
    no_config_check: bool = False
    #: Address launched servers listen on and are reached at (another node for srun).
    host: str = "127.0.0.1"
    #: Seconds one server launch is expected to take, for the wall-time estimate.
    launch_time_estimate_s: float = DEFAULT_LAUNCH_TIME_S
    #: Seconds one request may take before it is a failed request.
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    #: Keep every inter-token latency in requests.jsonl (default: per-request summary).
    keep_chunks: bool = False
    #: On resume, measure again the configurations whose trial failed.
    retry_failed: bool = False
    #: OpenAI-style engines: every prompt through the chat API (the model's template).
    apply_chat_template: bool = False
    #: ``--load``: ``concurrency:1,8,32`` (the concurrencies), ``rate:0.5,2,8`` or
    #: ``sweep[:N]`` (open-loop rate loads; see specbench.sweeps.rate_plan).
    load: str | None = None
    #: ``--arrival poisson|constant`` of rate loads (None: poisson).
    arrival: str | None = None
    #: ``--max-concurrency``: requests a rate load keeps in flight at most.
    max_concurrency: int | None = None
    #: ``--slo ttft_p99_ms=2000,tpot_p99_ms=50``: latency objectives of rate loads.
    slo: str | None = None
    #: ``--load ramp:1,8,32,8,1`` resolved (specbench.sweeps.rate_plan): the phases'
    #: concurrencies, measured after the search on one server per candidate.
    ramp: tuple[int, ...] = ()
    #: ``--adaptive``: the engine's default adaptive config and the one written from
    #: this run are measured over the ramp (the concurrencies in order without one).
    adaptive: bool = False
    #: Tests and embedders may inject a ready backend (e.g. one that fails on purpose).
    backend_instance: Backend | None = None


# -- option checks -------------------------------------------------------------------------
def startup_trials(prior_top: int) -> int:
    """Completed trials before TPE models: the enqueued ones (prior top, card, auto) plus
    a few random draws, so the model is fitted on more than the prior's neighbourhood."""
    return prior_top + 2 + EXTRA_STARTUP_TRIALS


def check_options(options: SweepOptions) -> None:
    """Reject invalid values and combinations before anything is loaded or launched.

    The options are checked in small groups, each against the one table of bounds
    (specbench.limits), so the CLI and a Python caller get the same one-line refusal and
    no group repeats another's rule.
    """
    for check in OPTION_GROUPS:
        check(options)


def check_search(options: SweepOptions) -> None:
    """What is searched: strategy, sampler, fixed configurations, trials, budget."""
    if options.strategy not in STRATEGIES:
        raise BadInputError(
            f"unknown --strategy {options.strategy!r} (expected {', '.join(STRATEGIES)})"
        )
    if options.sampler not in SAMPLERS:
        raise BadInputError(f"unknown --sampler {options.sampler!r} (expected tpe or gp)")
    check_bounds(
        {
            "--trials": options.trials,
            "--budget-minutes": options.budget_minutes,
            "--repeats": options.repeats,
        }
    )
    strategy = search_strategy(options.strategy)
    if options.configs and not strategy.takes_configs:
        raise BadInputError("--config is only used with --strategy fixed")
    if strategy.takes_configs and not options.configs and options.endpoint is None:
        raise BadInputError("--strategy fixed needs at least one --config (e.g. --config 3,4,8)")
    if strategy.takes_configs and options.space:
        raise BadInputError("--space narrows a search; --strategy fixed measures only its --config")


def check_engine(options: SweepOptions) -> None:
    """Which engine and how it is reached: backend, attach or launch, server sizes."""
    if isinstance(options.backend, str) and options.backend not in backend_choices():
        raise BadInputError(
            f"unknown --backend {options.backend!r} (expected {', '.join(backend_choices())})"
        )
    chosen = None if options.backend == AUTO else create(options.backend)
    if options.endpoint is not None:
        if not search_strategy(options.strategy).takes_configs or options.configs:
            raise BadInputError(
                "--endpoint measures only the attached server's own configuration; "
                "drop --strategy/--config/--space (launch servers to search)"
            )
        if options.space:
            raise BadInputError("--space cannot be used with --endpoint")
        refused = chosen and chosen.refused_option(
            endpoint=True, launch_cmd=False, server_args=False
        )
        if refused:
            raise BadInputError(refused)
        if options.launch_cmd is not None:
            raise BadInputError("--endpoint attaches to a running server; drop --launch-cmd")
    if options.baseline_endpoint is not None and options.endpoint is None:
        raise BadInputError("--baseline-endpoint is only used with --endpoint")
    refused = chosen and chosen.refused_option(
        endpoint=False,
        launch_cmd=options.launch_cmd is not None,
        server_args=bool(" ".join(options.server_args)),
    )
    if refused:
        raise BadInputError(refused)
    check_bounds(
        {
            "--tp": options.tp,
            "--ready-timeout": options.ready_timeout_s,
            "--sim-perturbation": options.sim_perturbation,
            "--launch-time-estimate": options.launch_time_estimate_s,
        }
    )
    if not options.host.strip():
        raise BadInputError("--host must not be empty")


def check_load(options: SweepOptions) -> None:
    """The closed-loop loads: concurrencies, each once. Rate loads (--load, --arrival,
    --max-concurrency, --slo) are checked where they are parsed (harness.loads), against
    the same table."""
    if not options.concurrencies:
        raise BadInputError("--concurrency needs at least one value")
    if any(c < BOUNDS["--concurrency"].low for c in options.concurrencies):
        raise BadInputError(
            f"--concurrency values must be >= 1 (got {list(options.concurrencies)})"
        )
    for concurrency in options.concurrencies:
        check_bound("--concurrency", concurrency)
    if len(set(options.concurrencies)) != len(options.concurrencies):
        raise BadInputError(f"--concurrency repeats a value ({list(options.concurrencies)})")


def check_workload(options: SweepOptions) -> None:
    """What each load sends: prompts, answer length, and how long a request may take."""
    check_bounds(
        {
            "--max-new-tokens": options.max_new_tokens,
            "--num-prompts": options.num_prompts,
            "--request-timeout": options.request_timeout_s,
        }
    )


def check_output(options: SweepOptions) -> None:
    """Where results go: how long a storage write may be retried. What --out, --storage
    and --study-name point at is checked where they are opened (outpaths, storage)."""
    check_bound("--storage-retry", options.storage_retry_s)


#: The option groups, in the order their refusals are reported.
OPTION_GROUPS: tuple[Callable[[SweepOptions], None], ...] = (
    check_search,
    check_engine,
    check_load,
    check_workload,
    check_output,
)


def check_auto_backend(options: SweepOptions, engine: EngineAdapter) -> None:
    """``--backend auto`` that falls back to the simulator refuses SGLang-only options.

    Silently running SIMULATED while the user asked to launch with their command or
    server arguments would report numbers of a machine nobody asked for. ``--tp`` is not
    one of them: the simulator prices the hardware profile at that TP, which is what a
    decision that does not fit advises (``--tp 8``) and must accept.
    """
    if options.backend != AUTO or not engine.in_process or options.backend_instance is not None:
        return
    ignored = [
        flag
        for flag, given in (
            ("--launch-cmd", options.launch_cmd is not None),
            ("--server-args", bool(options.server_args)),
            ("--host", options.host != "127.0.0.1"),
        )
        if given
    ]
    if ignored:
        raise BadInputError(
            f"--backend auto found no SGLang with a GPU here and would run SIMULATED, ignoring "
            f"{', '.join(ignored)}; pass --backend sglang to launch SGLang, or --backend sim "
            "to simulate on purpose"
        )


def resolve_engine(options: SweepOptions) -> EngineAdapter:
    """The engine of this sweep, resolved once: the injected backend's, the one
    ``--backend`` names (or hands in), or what auto finds on this machine."""
    if options.backend_instance is not None:
        return getattr(options.backend_instance, "engine", None) or create(
            options.backend_instance.name
        )
    if options.backend != AUTO:
        return create(options.backend)
    return auto_engine(attaching=options.endpoint is not None)


# -- prompts ---------------------------------------------------------------------------------
def select_prompts(prompts: Sequence[Prompt], n: int | None) -> list[Prompt]:
    """The first ``n`` prompts, taken round-robin across domains.

    A prefix of a file sorted by domain would be all chat, and chat accepts worse than
    code or math: a small sample must still mix domains to give a representative tau.
    """
    if n is None or n >= len(prompts):
        if n is not None and n > len(prompts):
            raise BadInputError(
                f"--num-prompts {n} asks for more than the {len(prompts)} prompts available"
            )
        return list(prompts)
    by_domain: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        by_domain.setdefault(prompt.domain, []).append(prompt)
    queues = list(by_domain.values())
    out: list[Prompt] = []
    index = 0
    while len(out) < n:
        for queue in queues:
            if index < len(queue) and len(out) < n:
                out.append(queue[index])
        index += 1
    return out


def requests_per_load(num_prompts: int, concurrency: int) -> int:
    """At least every prompt once, and two waves of the concurrency so the batch is
    actually full for most of the measurement instead of only at the start."""
    return max(num_prompts, 2 * concurrency if concurrency > 1 else num_prompts)
