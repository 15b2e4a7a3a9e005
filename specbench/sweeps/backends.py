"""The backends a sweep measures with, built from its engine and its options.

A sweep runs on one of three kinds of backend: an in-process engine's own (the
simulator, always SIMULATED), a server specbench launches per configuration, or servers
the user already runs (``--endpoint`` / ``--baseline-endpoint``). This module decides
which from what the engine declares (never its name), builds them, and reads what an
attached server is configured with, so that ``setup`` only wires the result into the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specbench.errors import BadInputError, ServerError
from specbench.harness.backend import Backend
from specbench.harness.engine import EngineAdapter
from specbench.harness.engines import AUTO
from specbench.harness.server_backend import ServerBackend
from specbench.model import DEFAULT_SIM_PROFILE, HardwareProfile, TargetPreset
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
        return SweepBackends(backend)
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
        return SweepBackends(launched)
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
    return SweepBackends(attached, baseline, config, str(version) if version else None)


def _server_info(engine: EngineAdapter, endpoint: str, flag: str) -> dict[str, Any]:
    try:
        return engine.fetch_info(endpoint.rstrip("/"))
    except ServerError as exc:
        raise BadInputError(f"{flag}: {exc}") from None


__all__ = ["SweepBackends", "build_backends", "check_fixed_configs", "hardware_spec_for"]
