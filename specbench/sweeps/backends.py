"""The backends a sweep measures with, built from its engine and its options.

A sweep runs on one of three kinds of backend: an in-process engine's own (the
simulator, always SIMULATED), a server specbench launches per configuration, or servers
the user already runs (``--endpoint`` / ``--baseline-endpoint``). This module decides
which from what the engine declares (never its name), builds them, and reads what an
attached server is configured with, so that ``setup`` only wires the result into the run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from specbench.errors import BadInputError, ServerError, SpecbenchError
from specbench.harness.backend import Backend
from specbench.harness.engine import Deployment, EngineAdapter
from specbench.harness.engines import AUTO
from specbench.harness.server_backend import ServerBackend
from specbench.model import DEFAULT_SIM_PROFILE, HardwareProfile, TargetPreset
from specbench.model.targets import served_model_config, with_served_config
from specbench.spec_config import SpecConfig
from specbench.sweeps.options import SweepOptions


@dataclass
class SweepBackends:
    """The speculative backend, the baseline one when it is separate, and what an
    attached server told about itself."""

    backend: Backend
    baseline: Backend | None = None
    #: The configuration an attached server runs (the only one it can measure).
    endpoint_config: SpecConfig | None = None
    #: The version an attached server reports in its server info.
    server_version: str | None = None
    #: The server measured, as every printed launch line names it: the launched
    #: deployment with the user's --server-args, or what an attached server reports.
    served: Deployment | None = None


def hardware_spec_for(options: SweepOptions, engine: EngineAdapter, notes: list[str]) -> str | None:
    """The hardware profile to describe the run with: the user's, or for an in-process
    (simulated) run without one the default profile (said in ``notes`` when the engine
    was guessed)."""
    if not engine.in_process or options.hardware is not None:
        return options.hardware
    if options.backend == AUTO and options.backend_instance is None:
        notes.append(
            f"no GPU with SGLang here: using the SIMULATED backend on hardware profile "
            f"{DEFAULT_SIM_PROFILE!r} (choose another with --hardware)"
        )
    return DEFAULT_SIM_PROFILE


def check_fixed_configs(options: SweepOptions, engine: EngineAdapter) -> None:
    """--config values the engine cannot run are refused before anything launches."""
    for config in options.configs:
        reason = engine.check_config(config)
        if reason is not None:
            raise BadInputError(f"--config {config.key}: {reason}")


def build_backends(
    options: SweepOptions,
    engine: EngineAdapter,
    target: TargetPreset,
    profile: HardwareProfile | None,
) -> SweepBackends:
    """The backends of ``engine``; an attached server is asked for its configuration
    first, and one running without speculation is refused."""
    if options.backend_instance is not None:
        return SweepBackends(options.backend_instance)
    if engine.in_process:
        assert profile is not None  # an in-process run always has a hardware profile
        backend = engine.in_process_backend(
            target, profile, seed=options.seed, perturbation=options.sim_perturbation
        )
        served = Deployment.of(target, tp=options.tp, max_batch=max(options.concurrencies))
        return SweepBackends(backend, served=served)
    common: dict[str, Any] = {
        "tp": options.tp,
        "server_args": list(options.server_args),
        "ready_timeout_s": options.ready_timeout_s,
        "engine": engine,
    }
    if options.endpoint is None:
        launched = ServerBackend(
            target,
            launch_cmd=options.launch_cmd,
            host=options.host,
            max_batch=max(options.concurrencies),
            config_check=not options.no_config_check,
            **common,
        )
        deployment = launched.launched_deployment()
        served = dataclasses.replace(
            deployment, extra_args=(*deployment.extra_args, *options.server_args)
        )
        return SweepBackends(launched, served=served)
    info = _server_info(engine, options.endpoint, "--endpoint")
    config = engine.config_from_server_info(info)
    if config is None:
        raise BadInputError(
            f"the server at {options.endpoint} runs without speculation; pass it as "
            "--baseline-endpoint and attach --endpoint to a server started with speculation"
        )
    attached = ServerBackend(target, endpoint=options.endpoint, **common)
    # serve-sim says so in its server info: label the run SIMULATED from the start.
    attached.simulated = info.get("specbench_simulated") is True
    baseline = None
    if options.baseline_endpoint is not None:
        _server_info(engine, options.baseline_endpoint, "--baseline-endpoint")
        baseline = ServerBackend(target, endpoint=options.baseline_endpoint, **common)
    version = info.get("version")
    served = engine.served_deployment(info, Deployment.of(target, tp=options.tp))
    return SweepBackends(attached, baseline, config, str(version) if version else None, served)


def served_target(
    target: TargetPreset, engine: EngineAdapter, backends: SweepBackends, notes: list[str]
) -> tuple[TargetPreset, str | None]:
    """``target`` with the architecture of the model a launched or attached server
    serves, read from that model's config.json when its path is a local folder, and the
    config used (None: the preset's). Said in ``notes``; a config that cannot be read is
    said too, and the preset's architecture stays."""
    served = backends.served
    if served is None or engine.in_process:
        return target, None
    config = served_model_config(served.model_path)
    if config is None:
        return target, None
    try:
        target = with_served_config(target, config)
    except SpecbenchError as exc:
        notes.append(
            f"the served model's {config} cannot be read ({exc}): the preset's architecture is used"
        )
        return target, None
    arch = target.arch
    notes.append(
        f"target architecture from the served model's {config}: {target.architecture or 'unnamed'}, "
        f"{arch.layers} layers, hidden {arch.hidden}"
        + (f", {arch.num_experts} experts" if arch.num_experts else "")
    )
    return target, str(config)


def _server_info(engine: EngineAdapter, endpoint: str, flag: str) -> dict[str, Any]:
    try:
        return engine.fetch_info(endpoint.rstrip("/"))
    except ServerError as exc:
        raise BadInputError(f"{flag}: {exc}") from None


__all__ = [
    "SweepBackends",
    "build_backends",
    "check_fixed_configs",
    "hardware_spec_for",
    "served_target",
]
