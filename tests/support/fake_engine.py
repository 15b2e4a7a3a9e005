"""An engine specbench does not ship, added the way a new engine is: this one module.

It proves the adapter contract is the whole seam: the adapter spells its own launch
line and rules, registers itself under its own name, and runs in process on the
performance model (so a test needs no server), behind a backend of its own name. The
sweep, the run directory and the report reach it only through the registry.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from specbench.harness.backend import Backend
from specbench.harness.engine import Deployment, EngineAdapter, LaunchArgs, RequestStats
from specbench.harness.sim_backend import SimBackend
from specbench.model import HardwareProfile, PerformanceModel, TargetPreset
from specbench.spec_config import SpecConfig

NAME = "fake-engine"
#: The widest tree the fake engine drafts (its own rule, checked by check_config).
MAX_WIDTH = 4


class FakeBackend(SimBackend):
    """The simulator under the fake engine's name (what the manifest records)."""

    name = NAME


class FakeEngine(EngineAdapter):
    """``python -m fake_engine.serve`` with depth/width/budget flags of its own."""

    name = NAME
    server_module = "fake_engine.serve"
    ready_path = "/ready"
    server_info_paths = ("/info",)
    in_process = True
    kept_info_fields = ("version",)

    def available(self) -> bool:
        return True

    def in_process_backend(
        self, target: TargetPreset, profile: HardwareProfile, *, seed: int, perturbation: float
    ) -> Backend:
        return FakeBackend(PerformanceModel(target, profile, seed=seed), seed=seed)

    def config_flags(self, config: SpecConfig) -> list[str]:
        return [
            "--depth",
            str(config.num_steps),
            "--width",
            str(config.topk),
            "--budget",
            str(config.num_draft_tokens),
        ]

    def speculative_flags(self, deployment: Deployment, config: SpecConfig) -> list[str]:
        return ["--draft", deployment.draft_model_path, *self.config_flags(config)]

    def launch_args(
        self,
        deployment: Deployment,
        config: SpecConfig | None,
        *,
        host: str | None = None,
        port: int | None = None,
        server_args: Sequence[str] = (),
    ) -> list[str]:
        args = ["--model", deployment.model_path, "--shards", str(deployment.tp)]
        if host is not None:
            args += ["--host", host]
        if port is not None:
            args += ["--port", str(port)]
        if config is not None:
            args += self.speculative_flags(deployment, config)
        return [*args, *server_args]

    def parse_launch_args(self, args: Sequence[str]) -> LaunchArgs:
        parser = argparse.ArgumentParser(add_help=False)
        for flag, dest, kind in (
            ("--model", "model_path", str),
            ("--shards", "tp", int),
            ("--host", "host", str),
            ("--port", "port", int),
            ("--draft", "draft_model_path", str),
            ("--depth", "num_steps", int),
            ("--width", "topk", int),
            ("--budget", "num_draft_tokens", int),
        ):
            parser.add_argument(flag, dest=dest, type=kind)
        known, ignored = parser.parse_known_args(list(args))
        return LaunchArgs(**vars(known), ignored=ignored)

    def check_config(self, config: SpecConfig) -> str | None:
        if config.topk > MAX_WIDTH:
            return f"the fake engine drafts at most {MAX_WIDTH} branches (width {config.topk})"
        return None

    def config_from_server_info(self, info: Mapping[str, Any]) -> SpecConfig | None:
        shape = info.get("draft")
        return SpecConfig(*shape) if isinstance(shape, list) else None

    def config_problems(
        self, info: Mapping[str, Any], deployment: Deployment, config: SpecConfig | None
    ) -> list[str]:
        have = self.config_from_server_info(info)
        return [] if have == config else [f"the server runs {have}, not {config}"]

    def request_stats(self, meta: Mapping[str, Any]) -> RequestStats:
        return RequestStats(completion_tokens=meta.get("tokens"))


FAKE = FakeEngine()
