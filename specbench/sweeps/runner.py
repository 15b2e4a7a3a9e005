"""One sweep, end to end: choose configurations, measure them, keep everything.

The Optuna study is the single source of truth. Every measured trial stores its
per-concurrency metric rows in its user attributes and the baseline lives in the study's
user attributes, so results.json and trials.csv can always be rebuilt from the study:
after a crash, on resume, and when several workers (one per GPU host) share a
PostgreSQL study and each writes its own run directory. Requests are the exception:
each worker appends the requests it measured to its own requests.jsonl.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from specbench import __version__
from specbench.errors import BadInputError, RunFailedError, ServerError, SpecbenchError
from specbench.harness.backend import Backend, LoadSpec
from specbench.harness.prompts import (
    Prompt,
    builtin_prompts,
    load_dataset,
    workload_fingerprint,
)
from specbench.harness.records import RequestRecord, write_records
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.sweeps.progress import NullProgress, SweepProgress
from specbench.sweeps.rundir import (
    STATE_COMPLETE,
    STATE_FAILED,
    STATE_RUNNING,
    Manifest,
    RunDirectory,
    WorkloadFingerprint,
    normalise_trials,
    trials_to_records,
)
from specbench.sweeps.search import (
    ATTR_CONFIG,
    ATTR_LOG_TAIL,
    ATTR_REUSED,
    ATTR_ROWS,
    ATTR_SKIPPED,
    ATTR_SOURCE,
    SAMPLERS,
    SOURCE_AUTO,
    SOURCE_CARD,
    SOURCE_PRIOR,
    STRATEGIES,
    ConfigSearch,
    Enqueued,
    Proposal,
    make_sampler,
    trial_config,
)
from specbench.sweeps.space import SearchSpace, parse_space
from specbench.sweeps.storage import (
    ATTR_ERROR,
    ATTR_WORKER,
    fail_abandoned_trials,
    is_url,
    open_storage,
    open_study,
    redact_url,
    worker_gone,
    worker_id,
)

if TYPE_CHECKING:
    from specbench.model import HardwareProfile, PerformanceModel, TargetPreset

DEFAULT_TARGET = "minimax-m2.7"
DEFAULT_TRIALS = 30
DEFAULT_CONCURRENCIES: tuple[int, ...] = (1, 8, 32)
DEFAULT_NUM_PROMPTS = 16
DEFAULT_MAX_NEW_TOKENS = 256
#: Model-predicted configurations enqueued before TPE starts.
DEFAULT_PRIOR_TOP = 5
#: Random proposals TPE makes after the enqueued ones before it starts modelling.
EXTRA_STARTUP_TRIALS = 3

#: Study user attributes.
STUDY_BASELINE = "baseline_rows"
STUDY_WORKLOAD = "workload_digest"
STUDY_TARGET = "target"
STUDY_SIMULATED = "simulated"
STUDY_BASELINE_CLAIM = "baseline_claimed_by"
#: Settling time of the baseline claim (see _claim_baseline).
CLAIM_SETTLE_S = 0.5
#: How long a worker waits, beyond a server start, for another worker's baseline.
BASELINE_WAIT_S = 900.0

#: Files a run directory may hold before its manifest exists (a fresh --out).
_RUN_DIR_ENTRIES = {"manifest.json", "study.journal", "logs", "requests.jsonl", ".requests.lock"}


@dataclass
class SweepOptions:
    """Everything ``specbench sweep`` accepts, as plain values (the CLI only parses)."""

    target: str = DEFAULT_TARGET
    backend: str = "auto"  # auto | sim | sglang
    hardware: str | None = None
    prior_hardware: str | None = None
    endpoint: str | None = None
    baseline_endpoint: str | None = None
    launch_cmd: str | None = None
    server_args: tuple[str, ...] = ()
    tp: int | None = None
    ready_timeout_s: float = 1800.0
    dataset: Path | None = None
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    num_prompts: int | None = DEFAULT_NUM_PROMPTS
    concurrencies: tuple[int, ...] = DEFAULT_CONCURRENCIES
    strategy: str = "optuna"  # optuna | grid | fixed (endpoint mode forces "fixed")
    sampler: str = "tpe"
    configs: tuple[SpecConfig, ...] = ()
    space: str | None = None
    trials: int | None = None  # None: 30 for optuna, every configuration for grid/fixed
    budget_minutes: float | None = None
    seed: int = 0
    out: Path | None = None
    storage: str | None = None
    study_name: str | None = None
    report: bool = True
    command: tuple[str, ...] = ()
    #: How far the simulated truth is from the model prior (0: the sim is the prior).
    sim_perturbation: float = 0.0
    prior_top: int = DEFAULT_PRIOR_TOP
    #: Tests and embedders may inject a ready backend (e.g. one that fails on purpose).
    backend_instance: Backend | None = None


@dataclass
class SweepOutcome:
    """Where the results are and what this run added; the files are the real output."""

    run_dir: RunDirectory
    results: dict[str, Any]
    trials: pd.DataFrame
    report_path: Path | None
    simulated: bool
    backend: str
    measured_now: int
    measured_total: int
    notes: list[str] = field(default_factory=list)


# -- option checks -------------------------------------------------------------------------
def startup_trials(prior_top: int) -> int:
    """Completed trials before TPE models: the enqueued ones (prior top, card, auto) plus
    a few random draws, so the model is fitted on more than the prior's neighbourhood."""
    return prior_top + 2 + EXTRA_STARTUP_TRIALS


def check_options(options: SweepOptions) -> None:
    """Reject invalid combinations before anything is loaded or launched."""
    if options.strategy not in STRATEGIES:
        raise BadInputError(
            f"unknown --strategy {options.strategy!r} (expected {', '.join(STRATEGIES)})"
        )
    if options.sampler not in SAMPLERS:
        raise BadInputError(f"unknown --sampler {options.sampler!r} (expected tpe or gp)")
    if options.backend not in ("auto", "sim", "sglang"):
        raise BadInputError(f"unknown --backend {options.backend!r} (expected auto, sim or sglang)")
    if options.trials is not None and options.trials < 1:
        raise BadInputError(f"--trials must be >= 1 (got {options.trials})")
    if options.budget_minutes is not None and options.budget_minutes <= 0:
        raise BadInputError(f"--budget-minutes must be > 0 (got {options.budget_minutes:g})")
    if not options.concurrencies:
        raise BadInputError("--concurrency needs at least one value")
    if any(c < 1 for c in options.concurrencies):
        raise BadInputError(
            f"--concurrency values must be >= 1 (got {list(options.concurrencies)})"
        )
    if len(set(options.concurrencies)) != len(options.concurrencies):
        raise BadInputError(f"--concurrency repeats a value ({list(options.concurrencies)})")
    if options.max_new_tokens < 1:
        raise BadInputError(f"--max-new-tokens must be >= 1 (got {options.max_new_tokens})")
    if options.num_prompts is not None and options.num_prompts < 1:
        raise BadInputError(f"--num-prompts must be >= 1 (got {options.num_prompts})")
    if options.configs and options.strategy != "fixed":
        raise BadInputError("--config is only used with --strategy fixed")
    if options.strategy == "fixed" and not options.configs and options.endpoint is None:
        raise BadInputError("--strategy fixed needs at least one --config (e.g. --config 3,4,8)")
    if options.strategy == "fixed" and options.space:
        raise BadInputError("--space narrows a search; --strategy fixed measures only its --config")
    if options.endpoint is not None:
        if options.strategy != "fixed" or options.configs:
            raise BadInputError(
                "--endpoint measures only the attached server's own configuration; "
                "drop --strategy/--config/--space (launch servers to search)"
            )
        if options.space:
            raise BadInputError("--space cannot be used with --endpoint")
        if options.backend == "sim":
            raise BadInputError(
                "--endpoint attaches to a server; it cannot be used with --backend sim"
            )
        if options.launch_cmd is not None:
            raise BadInputError("--endpoint attaches to a running server; drop --launch-cmd")
    if options.baseline_endpoint is not None and options.endpoint is None:
        raise BadInputError("--baseline-endpoint is only used with --endpoint")
    if options.backend == "sim":
        for flag, value in (
            ("--launch-cmd", options.launch_cmd),
            ("--server-args", " ".join(options.server_args) or None),
        ):
            if value is not None:
                raise BadInputError(f"{flag} launches SGLang; it cannot be used with --backend sim")
    if options.sim_perturbation < 0:
        raise BadInputError("the simulated truth's perturbation must be >= 0")


def sglang_available() -> bool:
    """True when this machine can launch SGLang: the package imports and CUDA is usable."""
    if importlib.util.find_spec("sglang") is None:
        return False
    try:
        import torch
    except Exception:
        return False
    return bool(torch.cuda.is_available())


def resolve_backend(options: SweepOptions) -> str:
    if options.backend_instance is not None:
        return options.backend_instance.name
    if options.backend != "auto":
        return options.backend
    if options.endpoint is not None or sglang_available():
        return "sglang"
    return "sim"


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


# -- run directory ---------------------------------------------------------------------------
def default_out(target: str, hardware: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in f"{target}-{hardware}")
    return Path("runs") / f"{stamp}-{safe}"


def check_run_dir(run_dir: RunDirectory, manifest: Manifest) -> Manifest | None:
    """Refuse a directory that holds another sweep; return its manifest when resuming.

    Runs before anything is written, so a refused directory is left exactly as it was.
    """
    path = run_dir.path
    if path.exists() and not path.is_dir():
        raise BadInputError(f"--out {path} exists and is not a directory")
    if not run_dir.exists():
        if path.is_dir():
            stray = sorted(p.name for p in path.iterdir() if p.name not in _RUN_DIR_ENTRIES)
            if stray:
                raise BadInputError(
                    f"--out {path} is not empty and not a specbench run directory "
                    f"(holds {', '.join(stray[:3])}{'...' if len(stray) > 3 else ''}); choose another --out"
                )
        return None
    old = run_dir.read_manifest()  # FileFormatError (exit 2) on another schema
    problems: list[str] = []
    if old.target != manifest.target:
        problems.append(f"target {old.target!r} != {manifest.target!r}")
    problems.extend(f"workload {d}" for d in old.workload.differences(manifest.workload))
    # "simulated" is not compared: a launched server reveals it (serve-sim) only once up.
    if old.backend != manifest.backend:
        problems.append(f"backend {old.backend} != {manifest.backend}")
    if old.hardware.get("name") != manifest.hardware.get("name"):
        problems.append(
            f"hardware {old.hardware.get('name')!r} != {manifest.hardware.get('name')!r}"
        )
    if list(old.concurrencies) != list(manifest.concurrencies):
        problems.append(f"concurrencies {old.concurrencies} != {manifest.concurrencies}")
    if problems:
        raise BadInputError(
            f"{run_dir.manifest_path} describes a different sweep ({'; '.join(problems)}); "
            "use another --out to start a new one"
        )
    return old


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock so workers sharing one run directory append whole lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# -- the sweep -------------------------------------------------------------------------------
@dataclass
class _Context:
    options: SweepOptions
    target: TargetPreset
    prompts: list[Prompt]
    run_dir: RunDirectory
    backend: Backend
    baseline_backend: Backend | None
    prior: PerformanceModel | None
    concurrencies: tuple[int, ...]
    simulated: bool
    worker: str
    progress: SweepProgress
    hardware: dict[str, Any]
    strategy: str
    manifest: Manifest | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def primary(self) -> int:
        return self.concurrencies[0]


def _load_profile(name: str, tp: int | None) -> HardwareProfile:
    from specbench.model import load_hardware

    return load_hardware(name, tp=tp)


def _hardware_desc(spec: str, profile: HardwareProfile) -> dict[str, Any]:
    source = "probe" if spec.lower().endswith(".json") else "profile"
    return {**profile.summary(), "source": source, "spec": spec}


def run_sweep(options: SweepOptions, progress: SweepProgress | None = None) -> SweepOutcome:
    """Run (or resume, or join) one sweep and return where its results are.

    Raises BadInputError for anything the user must fix (exit 2) and RunFailedError
    when the baseline cannot be measured (exit 1). KeyboardInterrupt propagates after
    the running trial is marked failed and results.json/trials.csv are written.
    """
    from specbench.model import DEFAULT_SIM_PROFILE, PerformanceModel, load_target

    progress = progress or NullProgress()
    check_options(options)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    target = load_target(options.target)
    space = parse_space(options.space)
    if options.dataset is not None:
        all_prompts = load_dataset(options.dataset)
        dataset_label = str(options.dataset)
    else:
        all_prompts = builtin_prompts()
        dataset_label = "builtin"
    prompts = select_prompts(all_prompts, options.num_prompts)
    fingerprint = workload_fingerprint(target, prompts, options.max_new_tokens, dataset_label)

    backend_name = resolve_backend(options)
    notes: list[str] = []
    hardware_spec = options.hardware
    if backend_name == "sim" and hardware_spec is None:
        hardware_spec = DEFAULT_SIM_PROFILE
        if options.backend == "auto" and options.backend_instance is None:
            notes.append(
                f"no GPU with SGLang here: using the SIMULATED backend on hardware profile "
                f"{DEFAULT_SIM_PROFILE!r} (choose another with --hardware)"
            )
    # An unset --tp means the target's own deployment (SGLang's --tp-size default for it),
    # not the TP the hardware profile was written for.
    tp = options.tp or target.default_tp
    profile = _load_profile(hardware_spec, tp) if hardware_spec else None
    prior_spec = options.prior_hardware or hardware_spec or DEFAULT_SIM_PROFILE
    prior_profile = (
        profile
        if prior_spec == hardware_spec and profile is not None
        else _load_profile(prior_spec, tp)
    )
    prior = PerformanceModel(target, prior_profile, seed=options.seed)

    strategy = "fixed" if options.endpoint is not None else options.strategy
    endpoint_config: SpecConfig | None = None
    baseline_backend: Backend | None = None
    if options.backend_instance is not None:
        backend = options.backend_instance
    elif backend_name == "sim":
        from specbench.harness.sim_backend import SimBackend

        assert profile is not None
        truth = PerformanceModel(target, profile, seed=options.seed)
        if options.sim_perturbation > 0:
            truth = truth.perturbed(options.seed, strength=options.sim_perturbation)
        backend = SimBackend(truth, seed=options.seed)
    else:
        backend, baseline_backend, endpoint_config = _sglang_backends(options, target)

    simulated = bool(backend.simulated)
    if profile is not None:
        hardware = _hardware_desc(str(hardware_spec), profile)
    else:
        described = backend.describe()
        hardware = {
            "name": "unknown",
            "interconnect_class": "unknown",
            "tp": described.get("tp"),
            "source": "endpoint" if options.endpoint else "unprobed",
        }
    hw_name = str(hardware.get("name", "unknown"))
    run_dir = RunDirectory(options.out or default_out(target.name, hw_name))
    manifest = Manifest(
        target=target.name,
        hardware=hardware,
        backend=backend.name,
        simulated=simulated,
        workload=fingerprint,
        concurrencies=list(options.concurrencies),
        strategy=strategy,
        specbench_version=__version__,
        command=list(options.command) or list(sys.argv),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        study_name="",
        storage="",
        seed=options.seed,
        extra={
            "space": space.describe(),
            "sampler": options.sampler if strategy == "optuna" else None,
            "prior_hardware": prior_profile.name,
            "sim_perturbation": options.sim_perturbation if backend_name == "sim" else None,
            "max_new_tokens": options.max_new_tokens,
            "num_prompts": len(prompts),
            "backend": backend.describe(),
        },
    )
    previous = check_run_dir(run_dir, manifest)
    if previous is not None and previous.simulated and not simulated:
        simulated = manifest.simulated = True  # learnt when its servers first came up
    study_name = options.study_name or (
        previous.study_name
        if previous is not None and previous.study_name
        else f"specbench-{run_dir.path.name}"
    )
    manifest.study_name = study_name
    manifest.storage = (
        redact_url(options.storage) if options.storage else str(run_dir.journal_path.name)
    )

    # A database is opened before anything is written: an unreachable URL leaves no trace.
    rdb = options.storage is not None and is_url(options.storage)
    storage = open_storage(options.storage, run_dir.journal_path) if rdb else None
    if previous is None:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        run_dir.write_manifest(manifest)
    run_dir.logs_dir.mkdir(parents=True, exist_ok=True)
    if storage is None:
        storage = open_storage(options.storage, run_dir.journal_path)

    total_target = _target_trials(options, strategy, space)
    prior_top = max(0, min(options.prior_top, total_target - 2))
    sampler = make_sampler(
        strategy,
        options.sampler,
        seed=options.seed,
        n_startup_trials=startup_trials(prior_top),
    )
    study = open_study(storage, study_name, sampler)
    _check_study(study, target.name, fingerprint, simulated)

    ctx = _Context(
        options=options,
        target=target,
        prompts=prompts,
        run_dir=run_dir,
        backend=backend,
        baseline_backend=baseline_backend,
        prior=prior,
        concurrencies=tuple(options.concurrencies),
        simulated=simulated,
        worker=worker_id(),
        progress=progress,
        hardware=hardware,
        strategy=strategy,
        manifest=manifest,
        notes=notes,
    )
    banner = _banner(ctx, space, study_name)
    for line in [*notes, banner]:
        progress.note(line)

    recovered = fail_abandoned_trials(study)
    if recovered:
        progress.note(
            f"resuming: trial(s) {', '.join(map(str, recovered))} were left running by a "
            "stopped worker and are marked failed"
        )
    search = ConfigSearch(study, space, strategy, sampler_name=options.sampler, worker=ctx.worker)
    _enqueue(search, ctx, space, strategy, endpoint_config, prior_top)

    measured_before = search.measured_count()
    measured_now = 0
    interrupted = False
    started = time.monotonic()
    try:
        _ensure_baseline(study, ctx)
        progress.set_total(total_target, min(measured_before, total_target))
        while True:
            done = search.measured_count()
            others = [t for t in search.in_flight() if t.user_attrs.get(ATTR_WORKER) != ctx.worker]
            if done + len(others) >= total_target:
                break
            # The budget stops *starting* trials; one always runs, or a budget shorter
            # than the baseline would leave nothing to show.
            if (
                options.budget_minutes is not None
                and measured_now > 0
                and time.monotonic() - started > options.budget_minutes * 60.0
            ):
                progress.note(f"--budget-minutes {options.budget_minutes:g} reached; stopping")
                break
            proposal = search.propose()
            if proposal is None:
                break
            _run_trial(search, proposal, ctx)
            measured_now += 1
            progress.advance(min(search.measured_count(), total_target))
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        progress.stop()
        try:
            # Read the study inside the lock: of workers sharing this directory, the
            # last to write has then also read the latest study.
            with _locked(run_dir.path / ".requests.lock"):
                frame, results = rebuild_results(study, ctx, space, study_name, search)
                run_dir.write_trials(frame)
                run_dir.write_results(results)
        finally:
            with contextlib.suppress(Exception):
                backend.close()
            if baseline_backend is not None:
                with contextlib.suppress(Exception):
                    baseline_backend.close()
        if interrupted:
            progress.note(
                f"interrupted: {search.measured_count()} measured configuration(s) are kept in "
                f"{run_dir.path}; run the same command with --out {run_dir.path} to resume"
            )

    report_path = _render_report(run_dir, options, notes) if options.report else None
    speculative = frame[frame["config_key"] != BASELINE_KEY]
    if not speculative["state"].eq(STATE_COMPLETE).any():
        raise RunFailedError(
            f"no configuration completed (failed ones are recorded in {run_dir.results_path}; "
            f"server logs in {run_dir.logs_dir})"
        )
    return SweepOutcome(
        run_dir=run_dir,
        results=results,
        trials=frame,
        report_path=report_path,
        simulated=ctx.simulated,
        backend=backend.name,
        measured_now=measured_now,
        measured_total=search.measured_count(),
        notes=notes,
    )


def _sglang_backends(
    options: SweepOptions, target: TargetPreset
) -> tuple[Backend, Backend | None, SpecConfig | None]:
    from specbench.harness.sglang_backend import (
        SglangBackend,
        config_from_server_info,
        fetch_server_info,
    )

    common: dict[str, Any] = {
        "tp": options.tp,
        "server_args": list(options.server_args),
        "ready_timeout_s": options.ready_timeout_s,
    }
    if options.endpoint is None:
        return SglangBackend(target, launch_cmd=options.launch_cmd, **common), None, None
    try:
        info = fetch_server_info(options.endpoint.rstrip("/"))
    except ServerError as exc:
        raise BadInputError(f"--endpoint: {exc}") from None
    config = config_from_server_info(info)
    if config is None:
        raise BadInputError(
            f"the server at {options.endpoint} runs without speculation; pass it as "
            "--baseline-endpoint and attach --endpoint to a server started with speculation"
        )
    backend = SglangBackend(target, endpoint=options.endpoint, **common)
    # serve-sim says so in its server info: label the run SIMULATED from the start.
    backend.simulated = info.get("specbench_simulated") is True
    baseline = None
    if options.baseline_endpoint is not None:
        try:
            fetch_server_info(options.baseline_endpoint.rstrip("/"))
        except ServerError as exc:
            raise BadInputError(f"--baseline-endpoint: {exc}") from None
        baseline = SglangBackend(target, endpoint=options.baseline_endpoint, **common)
    return backend, baseline, config


def _target_trials(options: SweepOptions, strategy: str, space: SearchSpace) -> int:
    if options.endpoint is not None:
        return 1
    if strategy == "fixed":
        wanted = len({c.key for c in options.configs})
    elif strategy == "grid":
        wanted = len(space)
    else:
        wanted = min(DEFAULT_TRIALS, len(space))
    if options.trials is not None:
        wanted = (
            min(options.trials, wanted) if strategy != "optuna" else min(options.trials, len(space))
        )
    return wanted


def _check_study(
    study: optuna.Study, target: str, fingerprint: WorkloadFingerprint, simulated: bool
) -> None:
    """A shared study belongs to one workload: joining it with another would mix apples
    and pears in one results table."""
    attrs = study.user_attrs
    mine: dict[str, Any] = {STUDY_TARGET: target, STUDY_WORKLOAD: fingerprint.digest}
    if STUDY_WORKLOAD not in attrs:
        for key, value in mine.items():
            study.set_user_attr(key, value)
        study.set_user_attr(STUDY_SIMULATED, simulated)
        return
    diffs = [f"{k} {attrs.get(k)!r} != {v!r}" for k, v in mine.items() if attrs.get(k) != v]
    if diffs:
        raise BadInputError(
            f"study {study.study_name!r} belongs to another sweep ({'; '.join(diffs)}); "
            "use another --study-name"
        )


def _banner(ctx: _Context, space: SearchSpace, study_name: str) -> str:
    sim = "[bold yellow]SIMULATED[/] " if ctx.simulated else ""
    hw = ctx.hardware.get("name", "unknown")
    return (
        f"{sim}sweep of [bold]{ctx.target.name}[/] on {hw} ({ctx.backend.name} backend), "
        f"strategy {ctx.strategy}, {len(space)} valid configurations, concurrency "
        f"{','.join(map(str, ctx.concurrencies))} (primary {ctx.primary}), "
        f"{len(ctx.prompts)} prompts x {ctx.options.max_new_tokens} tokens -> {ctx.run_dir.path}"
    )


def _enqueue(
    search: ConfigSearch,
    ctx: _Context,
    space: SearchSpace,
    strategy: str,
    endpoint_config: SpecConfig | None,
    prior_top: int,
) -> list[Enqueued]:
    items: list[Enqueued] = []
    if endpoint_config is not None:
        items = [Enqueued(endpoint_config, "endpoint")]
    elif strategy == "fixed":
        items = [Enqueued(c, "fixed") for c in ctx.options.configs]
    elif strategy == "grid":
        items = [Enqueued(c, "grid") for c in space.configs]
    else:
        items = prior_candidates(ctx.prior, ctx.target, space, ctx.primary, prior_top)
    return search.enqueue(items)


def prior_candidates(
    prior: PerformanceModel | None,
    target: TargetPreset,
    space: SearchSpace,
    concurrency: int,
    top: int,
    *,
    diverse: bool = True,
) -> list[Enqueued]:
    """What the Optuna strategy measures first, in order: the model's best predicted
    configurations, the target card's flags, SGLang's auto default (the last two only
    when inside the space). Duplicates are dropped by ConfigSearch.enqueue.

    ``diverse``: the prior's picks are its best configuration for each of its ``top``
    best num_steps values, not its ``top`` best overall. The overall top sits in one
    small neighbourhood (4-4-7, 4-8-7, 4-4-6...), so when the prior is wrong they are all
    wrong together; depth is what the interconnect moves most (slower all-reduce: fewer
    steps), so spreading the first measurements along it recovers from a wrong prior.
    """
    items: list[Enqueued] = []
    if prior is not None and top > 0:
        predictions = prior.predict_grid(list(space.configs), [concurrency])
        ranked = sorted(predictions, key=lambda p: (-p.speedup, p.config.key if p.config else ""))
        steps_taken: set[int] = set()
        for prediction in ranked:
            config = prediction.config
            if config is None or (diverse and config.num_steps in steps_taken):
                continue
            steps_taken.add(config.num_steps)
            items.append(Enqueued(config, SOURCE_PRIOR))
            if len(items) == top:
                break
    for config, source in ((target.card_config, SOURCE_CARD), (target.auto_config, SOURCE_AUTO)):
        if config in space:
            items.append(Enqueued(config, source))
    return items


# -- measuring --------------------------------------------------------------------------------
def _summarize(records: Sequence[RequestRecord]) -> dict[str, Any]:
    from specbench.harness.metrics import summarize

    return dict(summarize(records).as_row())


def _load(ctx: _Context, concurrency: int) -> LoadSpec:
    return LoadSpec(
        concurrency=concurrency,
        prompts=ctx.prompts,
        max_new_tokens=ctx.options.max_new_tokens,
        num_requests=requests_per_load(len(ctx.prompts), concurrency),
    )


def _store_requests(
    ctx: _Context, records: list[RequestRecord], trial_number: int, key: str, concurrency: int
) -> None:
    for record in records:
        record.trial_number = trial_number
        record.config_key = key
        record.concurrency = concurrency
        record.simulated = record.simulated or ctx.simulated
    with _locked(ctx.run_dir.path / ".requests.lock"):
        write_records(ctx.run_dir.requests_path, records)


def _measure_loads(
    ctx: _Context,
    backend: Backend,
    config: SpecConfig | None,
    trial_number: int,
    label: str,
    log_path: Path,
) -> tuple[list[dict[str, Any]], str]:
    """Run every concurrency on one server; rows (metrics only) and the log path."""
    key = BASELINE_KEY if config is None else config.key
    rows: list[dict[str, Any]] = []
    with backend.session(config, log_path=log_path) as session:
        for index, concurrency in enumerate(ctx.concurrencies):
            if index:
                session.flush_cache()
            ctx.progress.trial(f"{label} @ concurrency {concurrency}")
            records = session.run(_load(ctx, concurrency), progress=ctx.progress.requests)
            _store_requests(ctx, records, trial_number, key, concurrency)
            row = _summarize(records)
            row["concurrency"] = concurrency
            rows.append(row)
    _note_simulated(ctx, backend)
    return rows, str(log_path)


def _note_simulated(ctx: _Context, backend: Backend) -> None:
    """A launched or attached server may turn out to be serve-sim: from then on every
    number of this run is SIMULATED, and the manifest must say so."""
    if backend.simulated and not ctx.simulated:
        ctx.simulated = True
        ctx.progress.note("[bold yellow]SIMULATED[/]: the server is specbench serve-sim")
        if ctx.manifest is not None:
            ctx.manifest.simulated = True
            ctx.run_dir.write_manifest(ctx.manifest)


def _ensure_baseline(study: optuna.Study, ctx: _Context) -> None:
    """Measure the no-speculation baseline once per concurrency per study.

    A second worker (or a resumed run) reuses the stored rows; if two workers race, the
    first rows stored win and both compute speedups against them (results are rebuilt
    from the study, so every report agrees).
    """
    stored = _baseline_rows(study)
    missing = [c for c in ctx.concurrencies if c not in stored]
    if not missing:
        return
    backend = ctx.baseline_backend
    if ctx.options.endpoint is not None and backend is None:
        ctx.progress.note(
            "attached to --endpoint without --baseline-endpoint: no baseline, so no speedup "
            "(tau and tokens/s only)"
        )
        return
    if not _claim_baseline(study, ctx):
        return  # another worker measured it while we waited
    backend = backend or ctx.backend
    started = time.monotonic()
    try:
        rows, _ = _measure_loads(
            ctx,
            backend,
            None,
            -1,
            "baseline (no speculation)",
            ctx.run_dir.logs_dir / "baseline.log",
        )
    except ServerError as exc:
        tail = f" | log: {exc.log_tail.strip().splitlines()[-1]}" if exc.log_tail.strip() else ""
        raise RunFailedError(
            f"the baseline (no speculation) failed, so no speedup can be measured: {exc}{tail} "
            f"(full log {ctx.run_dir.logs_dir / 'baseline.log'})"
        ) from None
    duration = time.monotonic() - started
    for row in rows:
        if not row.get("output_tokens_per_s") or not row.get("num_requests"):
            raise RunFailedError(
                f"the baseline (no speculation) produced no successful request at concurrency "
                f"{row['concurrency']}; see {ctx.run_dir.logs_dir / 'baseline.log'}"
            )
        row.update(
            trial_number=-1,
            config_key=BASELINE_KEY,
            state=STATE_COMPLETE,
            source="baseline",
            speedup=1.0,
            predicted_tau=None,
            predicted_speedup=1.0 if ctx.prior is not None else None,
            simulated=ctx.simulated,
            worker=ctx.worker,
            duration_s=duration / max(len(rows), 1),
            error="",
            log_tail="",
        )
    latest = _baseline_rows(study)  # another worker may have stored it meanwhile
    merged = {**{int(r["concurrency"]): r for r in rows}, **latest}
    study.set_user_attr(STUDY_BASELINE, [_jsonable(merged[c]) for c in sorted(merged)])


def _claim_baseline(study: optuna.Study, ctx: _Context) -> bool:
    """Make sure one worker measures the baseline while the others wait for it.

    Optuna has no lock, so the claim is "write my name, let concurrent writers settle,
    read back": of workers starting together, only the last writer sees its own name.
    A claimer that died (same host, pid gone) or takes longer than a server start plus
    a measurement is taken over. Returns True when this worker must measure.
    """
    me = ctx.worker
    deadline = time.monotonic() + ctx.options.ready_timeout_s + BASELINE_WAIT_S
    waiting_noted = False
    while True:
        if all(c in _baseline_rows(study) for c in ctx.concurrencies):
            return False
        claim = study.user_attrs.get(STUDY_BASELINE_CLAIM)
        if claim is None or claim == me or worker_gone(str(claim)) or time.monotonic() > deadline:
            study.set_user_attr(STUDY_BASELINE_CLAIM, me)
            time.sleep(CLAIM_SETTLE_S)
            if study.user_attrs.get(STUDY_BASELINE_CLAIM) == me:
                return True
            continue
        if not waiting_noted:
            ctx.progress.note(f"waiting for worker {claim} to measure the baseline")
            waiting_noted = True
        time.sleep(0.5)


def _baseline_rows(study: optuna.Study) -> dict[int, dict[str, Any]]:
    stored = study.user_attrs.get(STUDY_BASELINE) or []
    return {int(r["concurrency"]): dict(r) for r in stored if isinstance(r, dict)}


def _jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """Rows go into Optuna user attributes (JSON): plain floats, None for NaN."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[str(key)] = value
    return out


def _trial_row_base(ctx: _Context, proposal: Proposal, concurrency: int) -> dict[str, Any]:
    config = proposal.config
    row: dict[str, Any] = {
        "trial_number": proposal.number,
        "config_key": config.key,
        "num_steps": config.num_steps,
        "topk": config.topk,
        "num_draft_tokens": config.num_draft_tokens,
        "concurrency": concurrency,
        "source": proposal.source,
        "simulated": ctx.simulated,
        "worker": ctx.worker,
    }
    if ctx.prior is not None:
        prediction = ctx.prior.predict(config, concurrency)
        row["predicted_tau"] = prediction.tau
        row["predicted_speedup"] = prediction.speedup
    return row


def _run_trial(search: ConfigSearch, proposal: Proposal, ctx: _Context) -> None:
    """Measure one configuration at every concurrency and tell the study."""
    config = proposal.config
    label = f"trial {proposal.number} {config.key} ({proposal.source})"
    log_path = ctx.run_dir.logs_dir / f"trial-{proposal.number:04d}-{config.key}.log"
    baseline = _baseline_rows(search.study)
    started = time.monotonic()
    try:
        metric_rows, _ = _measure_loads(ctx, ctx.backend, config, proposal.number, label, log_path)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            search.fail(proposal, "interrupted (Ctrl-C or SIGTERM)", interrupted=True)
        raise
    except ServerError as exc:
        error = " ".join(str(exc).split())
        rows = []
        for concurrency in ctx.concurrencies:
            row = _trial_row_base(ctx, proposal, concurrency)
            row.update(
                state=STATE_FAILED,
                error=error,
                log_tail=exc.log_tail[-4000:],
                duration_s=time.monotonic() - started,
            )
            rows.append(_jsonable(row))
        search.fail(proposal, error, rows=rows, log_tail=exc.log_tail[-4000:])
        ctx.progress.note(f"[red]trial {proposal.number} {config.key} failed:[/] {error}")
        return
    except BaseException:
        with contextlib.suppress(Exception):
            search.fail(proposal, "the sweep stopped on an internal error", interrupted=True)
        raise
    duration = time.monotonic() - started
    rows = []
    for metrics in metric_rows:
        concurrency = int(metrics["concurrency"])
        row = _trial_row_base(ctx, proposal, concurrency)
        row.update(metrics)
        row["speedup"] = _speedup(metrics, baseline.get(concurrency))
        row.update(
            state=STATE_COMPLETE, duration_s=duration / len(metric_rows), error="", log_tail=""
        )
        rows.append(_jsonable(row))
    primary = next(r for r in rows if r["concurrency"] == ctx.primary)
    value = primary.get("speedup")
    if value is None and ctx.options.endpoint is not None:
        value = primary.get("output_tokens_per_s")
    if value is None or not primary.get("num_requests"):
        error = f"no usable measurement at concurrency {ctx.primary} (every request failed?)"
        for row in rows:
            row.update(state=STATE_FAILED, error=error)
        search.fail(proposal, error, rows=rows)
        ctx.progress.note(f"[red]trial {proposal.number} {config.key} failed:[/] {error}")
        return
    search.complete(proposal, float(value), rows)


def _speedup(metrics: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> float | None:
    """Aggregate tokens/s over the baseline's at the same concurrency and prompts."""
    if baseline is None:
        return None
    mine, theirs = metrics.get("output_tokens_per_s"), baseline.get("output_tokens_per_s")
    if not isinstance(mine, (int, float)) or not isinstance(theirs, (int, float)) or theirs <= 0:
        return None
    if not math.isfinite(mine):
        return None
    return float(mine) / float(theirs)


# -- results -----------------------------------------------------------------------------------
def rows_from_study(study: optuna.Study) -> list[dict[str, Any]]:
    """Every trial row, rebuilt from the study: baseline first, then trials by number.

    Trials that measured nothing themselves (reused a measurement, duplicate in flight)
    add no rows, so each configuration appears once; a RUNNING trial appears as
    "running" and an interrupted one as "failed" with its reason, until a later trial
    measures its configuration.
    """
    baseline = _baseline_rows(study)
    rows: list[dict[str, Any]] = [baseline[c] for c in sorted(baseline)]
    seen: set[str] = set()
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    measured = {str(t.user_attrs[ATTR_CONFIG]) for t in trials if ATTR_ROWS in t.user_attrs}
    for trial in trials:
        attrs = trial.user_attrs
        if ATTR_REUSED in attrs or ATTR_SKIPPED in attrs:
            continue
        config = trial_config(trial)
        if config is None:
            continue
        if ATTR_ROWS in attrs:
            if config.key in seen:
                continue  # a race measured it twice: keep the first
            seen.add(config.key)
            for row in attrs[ATTR_ROWS]:
                fresh = dict(row)
                fresh["speedup"] = _speedup(fresh, baseline.get(int(fresh["concurrency"])))
                if fresh.get("state") == STATE_FAILED and fresh.get("speedup") is not None:
                    fresh["speedup"] = None
                rows.append(fresh)
            continue
        state = STATE_RUNNING if trial.state == TrialState.RUNNING else STATE_FAILED
        if trial.state == TrialState.WAITING:
            continue
        if state == STATE_FAILED and config.key in measured:
            continue  # an interrupted attempt, measured again later
        rows.append(
            {
                "trial_number": trial.number,
                "config_key": config.key,
                "num_steps": config.num_steps,
                "topk": config.topk,
                "num_draft_tokens": config.num_draft_tokens,
                "concurrency": None,
                "state": state,
                "source": attrs.get(ATTR_SOURCE, ""),
                "worker": attrs.get(ATTR_WORKER, ""),
                "error": attrs.get(ATTR_ERROR, ""),
                "log_tail": attrs.get(ATTR_LOG_TAIL, ""),
                "simulated": study.user_attrs.get(STUDY_SIMULATED),
            }
        )
    return rows


def _baseline_summary(frame: pd.DataFrame) -> list[dict[str, Any]]:
    base = frame[frame["config_key"] == BASELINE_KEY]
    fields = (
        "concurrency",
        "output_tokens_per_s",
        "per_stream_tokens_per_s",
        "ttft_ms_p50",
        "itl_ms_p50",
        "num_requests",
    )
    out = []
    for record in trials_to_records(base):
        out.append({name: record.get(name) for name in fields})
    return sorted(out, key=lambda r: int(r["concurrency"] or 0))


def rebuild_results(
    study: optuna.Study,
    ctx: _Context,
    space: SearchSpace,
    study_name: str,
    search: ConfigSearch,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """trials.csv rows and the results.json body, from the study alone."""
    from specbench.reports.verdict import compute_verdict

    rows = rows_from_study(study)
    # Interrupted/running trials have no concurrency: give them the primary so every
    # row satisfies the results schema (config_key, concurrency, state).
    for row in rows:
        if row.get("concurrency") is None:
            row["concurrency"] = ctx.primary
    frame = normalise_trials(rows)
    verdict = compute_verdict(
        frame,
        list(ctx.concurrencies),
        target=ctx.target,
        simulated=ctx.simulated,
        hardware_class=str(ctx.hardware.get("interconnect_class") or "") or None,
        tp=ctx.hardware.get("tp") if isinstance(ctx.hardware.get("tp"), int) else None,
    )
    trials = study.get_trials(deepcopy=False)
    workers = sorted(
        {str(t.user_attrs.get(ATTR_WORKER)) for t in trials if t.user_attrs.get(ATTR_WORKER)}
    )
    results: dict[str, Any] = {
        "target": ctx.target.name,
        "hardware": ctx.hardware,
        "backend": ctx.backend.name,
        "simulated": ctx.simulated,
        "concurrencies": list(ctx.concurrencies),
        "primary_concurrency": ctx.primary,
        "baseline": _baseline_summary(frame),
        **verdict.to_json(),
        "study": {
            "name": study_name,
            "storage": redact_url(ctx.options.storage) if ctx.options.storage else "study.journal",
            "strategy": ctx.strategy,
            "sampler": ctx.options.sampler if ctx.strategy == "optuna" else None,
            "space": space.describe(),
            "space_size": len(space),
            "measured": search.measured_count(),
            "optuna_trials": len(trials),
            "reused": sum(1 for t in trials if ATTR_REUSED in t.user_attrs),
            "workers": workers,
        },
        "trials": trials_to_records(frame),
    }
    return frame, results


def _render_report(run_dir: RunDirectory, options: SweepOptions, notes: list[str]) -> Path | None:
    """report.html, when the reports package is installed in this tree; never fatal."""
    try:
        module = importlib.import_module("specbench.reports.html")
    except ImportError:
        notes.append("report.html skipped: the HTML report module is not available")
        return None
    render = getattr(module, "render_report", None)
    if render is None:
        notes.append("report.html skipped: specbench.reports.html has no render_report")
        return None
    try:
        path = render(run_dir.path)
    except SpecbenchError as exc:
        notes.append(f"report.html skipped: {exc}")
        return None
    return Path(path)


__all__ = [
    "DEFAULT_CONCURRENCIES",
    "DEFAULT_TARGET",
    "DEFAULT_TRIALS",
    "SweepOptions",
    "SweepOutcome",
    "check_options",
    "prior_candidates",
    "rebuild_results",
    "requests_per_load",
    "resolve_backend",
    "rows_from_study",
    "run_sweep",
    "select_prompts",
    "startup_trials",
]
