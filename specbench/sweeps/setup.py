"""Everything a sweep decides before its first measurement.

``set_up`` loads the target and the prompts, builds the backends, describes the run in
a manifest, opens (or resumes) the run directory and the Optuna study, and enqueues the
first configurations. What it returns, ``SweepContext`` (sweeps.context), is all the
later steps read; they import that module, never this one.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from rich.markup import escape

from specbench import __version__
from specbench.errors import BadInputError
from specbench.harness.backend import Backend
from specbench.harness.prompts import Prompt, builtin_prompts, load_dataset, workload_fingerprint
from specbench.harness.served_deployment import SERVED_KEY, deployment_record
from specbench.model import (
    DEFAULT_SIM_PROFILE,
    HardwareProfile,
    PerformanceModel,
    TargetPreset,
    load_hardware,
    load_target,
)
from specbench.outpaths import check_output_dir
from specbench.process.server_pidfile import SERVERS_DIR
from specbench.rundir.layout import Manifest, RunDirectory, WorkloadFingerprint
from specbench.rundir.writer_lock import LOCK_NAME
from specbench.spec_config import SpecConfig
from specbench.sweeps.backends import (
    SweepBackends,
    build_backends,
    check_fixed_configs,
    hardware_spec_for,
    served_target,
)
from specbench.sweeps.context import SweepContext
from specbench.sweeps.launch_plan import launch_estimate
from specbench.sweeps.machine_prior import prior_spec
from specbench.sweeps.method_choice import methods_space
from specbench.sweeps.options import (
    SweepOptions,
    check_auto_backend,
    resolve_engine,
    select_prompts,
    startup_trials,
)
from specbench.sweeps.progress import SweepProgress
from specbench.sweeps.rate_plan import resolve_loads
from specbench.sweeps.search import (
    SOURCE_AUTO,
    SOURCE_CARD,
    SOURCE_PRIOR,
    ConfigSearch,
    Enqueued,
)
from specbench.sweeps.space import SearchSpace, chain_space, parse_space
from specbench.sweeps.storage import (
    STUDY_SIMULATED,
    STUDY_TARGET,
    STUDY_WORKLOAD,
    is_url,
    open_storage,
    open_study,
    redact_url,
    worker_id,
)
from specbench.sweeps.strategy import Fixed, SearchStrategy, search_strategy

#: Files a run directory may hold before its manifest exists (a fresh --out).
_RUN_DIR_ENTRIES = {
    "manifest.json",
    "study.journal",
    "logs",
    "requests.jsonl",
    ".requests.lock",
    LOCK_NAME,
    SERVERS_DIR,
}


def set_up(options: SweepOptions, progress: SweepProgress) -> SweepContext:
    """Load, describe, open and enqueue; nothing is measured yet."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    progress.phase("loading the target preset and the prompts")
    target = load_target(options.target)
    space = parse_space(options.space)
    prompts, fingerprint = _workload(options, target)
    options, rates = resolve_loads(options, len(prompts))
    engine = resolve_engine(options)
    check_auto_backend(options, engine)
    launching = not engine.in_process and options.endpoint is None
    if options.prune is None:
        # Pruning saves server launches; a simulated run costs nothing to finish.
        options = dataclasses.replace(options, prune=launching)
    if options.stop_when_settled is None:
        options = dataclasses.replace(options, stop_when_settled=launching)
    if engine.chain_only:
        space = chain_space(space, engine.name)
    if options.methods is not None:
        space = methods_space(options, target, engine, space)
    check_fixed_configs(options, engine)
    notes: list[str] = []
    hardware_spec = hardware_spec_for(options, engine, notes)
    # An unset --tp means the target's own deployment (SGLang's --tp-size default for it),
    # not the TP the hardware profile was written for.
    tp = options.tp or target.default_tp
    profile = load_hardware(hardware_spec, tp=tp) if hardware_spec else None
    prior = prior_spec(
        options.prior_hardware,
        hardware_spec,
        launching=launching,
        tp=tp,
        default=DEFAULT_SIM_PROFILE,
        notes=notes,
    )
    prior_profile = (
        profile if prior == hardware_spec and profile is not None else load_hardware(prior, tp=tp)
    )
    backends = build_backends(options, engine, target, profile)
    target, served_config = served_target(target, engine, backends, notes)
    if rates is not None and not backends.backend.runs_rate_loads:
        raise BadInputError(
            f"the {backends.backend.name} backend cannot run request-rate loads yet; "
            "use --backend sim or --load concurrency:..."
        )
    strategy = search_strategy(Fixed() if options.endpoint is not None else options.strategy)
    manifest = _manifest(options, target, backends.backend, profile, hardware_spec, fingerprint)
    manifest.strategy = strategy.name
    manifest.extra.update(
        space=space.describe(),
        sampler=strategy.sampler_label(options.sampler),
        prior_hardware=prior_profile.name,
        sim_perturbation=options.sim_perturbation if engine.in_process else None,
        num_prompts=len(prompts),
        config_check="skipped (--no-config-check)" if options.no_config_check else "on",
        repeats=options.repeats,
        prune=options.prune,
        stop_when_settled=options.stop_when_settled and not strategy.replays_queue,
        engine_default_config=config_key_or_none(engine.default_config(target)),
        rate_loads=None if rates is None else rates.describe(),
        target_config=served_config,
    )
    if backends.served is not None:
        manifest.extra[SERVED_KEY] = deployment_record(backends.served)
    progress.phase("opening the run directory and the study")
    run_dir, study, prior_top, total = _open_run(
        options, manifest, strategy, space, lambda line: progress.note(escape(line))
    )
    worker = worker_id()
    ctx = SweepContext(
        options=options,
        target=target,
        prompts=prompts,
        run_dir=run_dir,
        manifest=manifest,
        engine=engine,
        backend=backends.backend,
        baseline_backend=backends.baseline,
        prior=PerformanceModel(target, prior_profile, seed=options.seed),
        simulated=manifest.simulated,
        worker=worker,
        progress=progress,
        strategy=strategy,
        space=space,
        study=study,
        search=ConfigSearch(study, space, strategy, sampler_name=options.sampler, worker=worker),
        total_target=total,
        notes=notes,
        rates=rates,
    )
    for line in [*notes, _banner(ctx, backends)]:
        progress.note(line)
    if launching and options.backend_instance is None:
        estimate = launch_estimate(
            ctx.prior,
            ctx.concurrencies,
            len(prompts),
            options.max_new_tokens,
            total,
            launch_s=options.launch_time_estimate_s,
        )
        progress.note(estimate.describe())
    ctx.search.enqueue(_first_configs(ctx, backends.endpoint_config, prior_top))
    return ctx


def _workload(
    options: SweepOptions, target: TargetPreset
) -> tuple[list[Prompt], WorkloadFingerprint]:
    if options.dataset is not None:
        all_prompts, label = load_dataset(options.dataset), str(options.dataset)
    else:
        all_prompts, label = builtin_prompts(), "builtin"
    prompts = select_prompts(all_prompts, options.num_prompts)
    return prompts, workload_fingerprint(target, prompts, options.max_new_tokens, label)


def _manifest(
    options: SweepOptions,
    target: TargetPreset,
    backend: Backend,
    profile: HardwareProfile | None,
    hardware_spec: str | None,
    fingerprint: WorkloadFingerprint,
) -> Manifest:
    if profile is not None:
        source = "probe" if str(hardware_spec).lower().endswith(".json") else "profile"
        hardware = {**profile.summary(), "source": source, "spec": str(hardware_spec)}
    else:
        hardware = {
            "name": "unknown",
            "interconnect_class": "unknown",
            "tp": backend.describe().get("tp"),
            "source": "endpoint" if options.endpoint else "unprobed",
        }
    return Manifest(
        target=target.name,
        hardware=hardware,
        backend=backend.name,
        simulated=bool(backend.simulated),
        workload=fingerprint,
        concurrencies=list(options.concurrencies),
        strategy=options.strategy,
        specbench_version=__version__,
        command=list(options.command) or list(sys.argv),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        study_name="",
        storage="",
        seed=options.seed,
        extra={
            "space": None,
            "sampler": None,
            "prior_hardware": None,
            "sim_perturbation": None,
            "max_new_tokens": options.max_new_tokens,
            "num_prompts": None,
            "backend": backend.describe(),
        },
    )


def _open_run(
    options: SweepOptions,
    manifest: Manifest,
    strategy: SearchStrategy,
    space: SearchSpace,
    note: Callable[[str], None],
) -> tuple[RunDirectory, optuna.Study, int, int]:
    """The run directory (created or resumed) and its study; nothing is written to a
    directory that belongs to another sweep, or before a database answers."""
    hw_name = str(manifest.hardware.get("name", "unknown"))
    run_dir = RunDirectory(options.out or default_out(manifest.target, hw_name))
    previous = check_run_dir(run_dir, manifest)
    if previous is not None and previous.simulated and not manifest.simulated:
        manifest.simulated = True  # learnt when its servers first came up
    manifest.study_name = options.study_name or (
        previous.study_name
        if previous is not None and previous.study_name
        else f"specbench-{run_dir.path.name}"
    )
    manifest.storage = (
        redact_url(options.storage) if options.storage else str(run_dir.journal_path.name)
    )
    rdb = options.storage is not None and is_url(options.storage)
    storage = (
        open_storage(
            options.storage, run_dir.journal_path, retry_s=options.storage_retry_s, note=note
        )
        if rdb
        else None
    )
    check_output_dir(run_dir.path)
    run_dir.path.mkdir(parents=True, exist_ok=True)
    run_dir.lock_for_writing(worker_id(), shared=options.storage is not None)
    try:
        # Again under the lock: the sweep that held it may have written the manifest.
        if check_run_dir(run_dir, manifest) is None:
            run_dir.write_manifest(manifest)
        run_dir.logs_dir.mkdir(parents=True, exist_ok=True)
        if storage is None:
            storage = open_storage(options.storage, run_dir.journal_path)
        total = (
            1
            if options.endpoint is not None
            else strategy.target_trials(space, options.configs, options.trials)
        )
        prior_top = max(0, min(options.prior_top, total - 2))
        sampler = strategy.sampler(
            options.sampler, seed=options.seed, n_startup_trials=startup_trials(prior_top)
        )
        study = open_study(storage, manifest.study_name, sampler)
        _check_study(study, manifest.target, manifest.workload, manifest.simulated)
    except BaseException:
        run_dir.release_writing_lock()
        raise
    return run_dir, study, prior_top, total


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
            stray = sorted(p.name for p in path.iterdir() if not _belongs_to_a_run(p.name))
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
    if old.extra.get("rate_loads") != manifest.extra.get("rate_loads"):
        problems.append("rate loads or SLOs differ (--load/--arrival/--max-concurrency/--slo)")
    if problems:
        raise BadInputError(
            f"{run_dir.manifest_path} describes a different sweep ({'; '.join(problems)}); "
            "use another --out to start a new one"
        )
    return old


def _belongs_to_a_run(name: str) -> bool:
    """A file a sweep writes before its manifest, or the temporary file of an atomic
    write in progress (``.manifest.json.x1y2``: another sweep starting this instant)."""
    return name in _RUN_DIR_ENTRIES or any(name.startswith(f".{e}.") for e in _RUN_DIR_ENTRIES)


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


def _banner(ctx: SweepContext, backends: SweepBackends) -> str:
    """What this run measures, said the way the user will check it: an attached server
    by its address, version and the configuration it really runs."""
    sim = "[bold yellow]SIMULATED[/] " if ctx.simulated else ""
    rates = "" if ctx.rates is None else f", then {ctx.rates.banner()}"
    load = (
        f"concurrency {','.join(map(str, ctx.concurrencies))} (primary {ctx.primary}){rates}, "
        f"{len(ctx.prompts)} prompts x {ctx.options.max_new_tokens} tokens -> {ctx.run_dir.path}"
    )
    config = backends.endpoint_config
    if config is not None:
        version = (
            f"version {backends.server_version}"
            if backends.server_version
            else "version not reported"
        )
        baseline = ctx.options.baseline_endpoint or "none, so speedups are unknown"
        return (
            f"{sim}measuring [bold]{ctx.target.name}[/] on the server at {ctx.options.endpoint} "
            f"({version}), which runs {config.key} (num_steps {config.num_steps}, topk "
            f"{config.topk}, num_draft_tokens {config.num_draft_tokens}); baseline server: "
            f"{baseline}; {load}"
        )
    what = ctx.strategy.describe(ctx.space, ctx.options.configs)
    hw = ctx.hardware.get("name", "unknown")
    return (
        f"{sim}sweep of [bold]{ctx.target.name}[/] on {hw} ({ctx.backend.name} backend), "
        f"{what}, {load}"
    )


def config_key_or_none(config: SpecConfig | None) -> str | None:
    """The key of an engine's own choice, None where the engine has none (vLLM)."""
    return None if config is None else config.key


def _first_configs(
    ctx: SweepContext, endpoint_config: SpecConfig | None, prior_top: int
) -> list[Enqueued]:
    if endpoint_config is not None:
        return [Enqueued(endpoint_config, "endpoint")]
    return ctx.strategy.first(
        ctx.space,
        ctx.options.configs,
        lambda: prior_candidates(
            ctx.prior,
            ctx.target,
            ctx.space,
            ctx.primary,
            prior_top,
            auto=ctx.engine.default_config(ctx.target),
            engine_default=True,
        ),
    )


def prior_candidates(
    prior: PerformanceModel | None,
    target: TargetPreset,
    space: SearchSpace,
    concurrency: int,
    top: int,
    *,
    diverse: bool = True,
    auto: SpecConfig | None = None,
    engine_default: bool = False,
) -> list[Enqueued]:
    """What the Optuna strategy measures first, in order: the model's best predicted
    configurations, the target card's flags, the engine's automatic choice (the last two
    only when inside the space). Duplicates are dropped by ConfigSearch.enqueue.

    ``auto`` is the engine's own choice (EngineAdapter.default_config) when
    ``engine_default`` says an engine was asked: None then means it has none (vLLM),
    and no configuration is labelled automatic. Without an engine, the preset's.

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
    if auto is None and not engine_default:
        auto = target.auto_config  # no engine asked: the preset's SGLang choice
    for config, source in ((target.card_config, SOURCE_CARD), (auto, SOURCE_AUTO)):
        if config is not None and config in space:
            items.append(Enqueued(config, source))
    return items
