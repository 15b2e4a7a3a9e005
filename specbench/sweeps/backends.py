"""The backends a sweep measures with, chosen from its options.

A sweep runs on one of three kinds of backend: the embedded simulator (``sim``, always
SIMULATED), a server specbench launches per configuration, or servers the user already
runs (``--endpoint`` / ``--baseline-endpoint``). This module decides which, builds them,
and reads what an attached server is configured with, so that ``setup`` only wires the
result into the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specbench.errors import BadInputError, ServerError
from specbench.harness.backend import Backend
from specbench.harness.engine import EngineAdapter
from specbench.harness.engines import ENGINES, get_engine
from specbench.harness.server_backend import ServerBackend
from specbench.harness.sim_backend import SimBackend
from specbench.model import DEFAULT_SIM_PROFILE, HardwareProfile, PerformanceModel, TargetPreset
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


def hardware_spec_for(options: SweepOptions, backend_name: str, notes: list[str]) -> str | None:
    """The hardware profile to describe the run with: the user's, or for a simulated run
    without one the default profile (said in ``notes`` when the backend was guessed)."""
    if backend_name != "sim" or options.hardware is not None:
        return options.hardware
    if options.backend == "auto" and options.backend_instance is None:
        notes.append(
            f"no GPU with SGLang here: using the SIMULATED backend on hardware profile "
            f"{DEFAULT_SIM_PROFILE!r} (choose another with --hardware)"
        )
    return DEFAULT_SIM_PROFILE


def check_fixed_configs(options: SweepOptions, backend_name: str) -> None:
    """--config values the engine cannot run are refused before anything launches."""
    if backend_name not in ENGINES:
        return
    engine = ENGINES[backend_name]
    for config in options.configs:
        reason = engine.check_config(config)
        if reason is not None:
            raise BadInputError(f"--config {config.key}: {reason}")


def build_backends(
    options: SweepOptions,
    backend_name: str,
    target: TargetPreset,
    profile: HardwareProfile | None,
) -> SweepBackends:
    """The backends for ``backend_name``; an attached server is asked for its
    configuration first, and one running without speculation is refused."""
    if options.backend_instance is not None:
        return SweepBackends(options.backend_instance)
    if backend_name == "sim":
        assert profile is not None  # a sim run always has a hardware profile
        truth = PerformanceModel(target, profile, seed=options.seed)
        if options.sim_perturbation > 0:
            truth = truth.perturbed(options.seed, strength=options.sim_perturbation)
        return SweepBackends(SimBackend(truth, seed=options.seed))
    engine = get_engine(backend_name)
    common: dict[str, Any] = {
        "tp": options.tp,
        "server_args": list(options.server_args),
        "ready_timeout_s": options.ready_timeout_s,
        "engine": engine,
    }
    if options.endpoint is None:
        backend = ServerBackend(
            target,
            launch_cmd=options.launch_cmd,
            host=options.host,
            max_batch=max(options.concurrencies),
            config_check=not options.no_config_check,
            **common,
        )
        return SweepBackends(backend)
    info = _server_info(engine, options.endpoint, "--endpoint")
    config = engine.config_from_server_info(info)
    if config is None:
        raise BadInputError(
            f"the server at {options.endpoint} runs without speculation; pass it as "
            "--baseline-endpoint and attach --endpoint to a server started with speculation"
        )
    backend = ServerBackend(target, endpoint=options.endpoint, **common)
    # serve-sim says so in its server info: label the run SIMULATED from the start.
    backend.simulated = info.get("specbench_simulated") is True
    baseline = None
    if options.baseline_endpoint is not None:
        _server_info(engine, options.baseline_endpoint, "--baseline-endpoint")
        baseline = ServerBackend(target, endpoint=options.baseline_endpoint, **common)
    version = info.get("version")
    return SweepBackends(backend, baseline, config, str(version) if version else None)


def _server_info(engine: EngineAdapter, endpoint: str, flag: str) -> dict[str, Any]:
    try:
        return engine.fetch_info(endpoint.rstrip("/"))
    except ServerError as exc:
        raise BadInputError(f"{flag}: {exc}") from None


__all__ = ["SweepBackends", "build_backends", "check_fixed_configs", "hardware_spec_for"]
