"""The SGLang engine adapter: its flags, its launch-argument parser, its rules, its stats.

Flag names follow sgl-project/sglang python/sglang/srt/server_args.py; the per-request
counters follow its tokenizer_manager.py (``meta_info``); the server info follows its
``/server_info`` (older ``/get_server_info``) route.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from specbench.errors import BadInputError, ServerError
from specbench.harness.engine import Deployment, EngineAdapter, LaunchArgs, RequestStats
from specbench.spec_config import SpecConfig, invalid_reason


class _ArgParser(argparse.ArgumentParser):
    """argparse that reports errors as BadInputError instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"--sglang-args: {message}")


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class SglangAdapter(EngineAdapter):
    """``python -m sglang.launch_server`` and its native API."""

    name = "sglang"
    server_module = "sglang.launch_server"
    ready_path = "/health_generate"
    server_info_paths = ("/server_info", "/get_server_info")

    def config_flags(self, config: SpecConfig) -> list[str]:
        return [
            "--speculative-num-steps",
            str(config.num_steps),
            "--speculative-eagle-topk",
            str(config.topk),
            "--speculative-num-draft-tokens",
            str(config.num_draft_tokens),
        ]

    def speculative_flags(self, deployment: Deployment, config: SpecConfig) -> list[str]:
        return [
            "--speculative-algorithm",
            deployment.algorithm,
            "--speculative-draft-model-path",
            deployment.draft_model_path,
            *self.config_flags(config),
        ]

    def launch_args(
        self,
        deployment: Deployment,
        config: SpecConfig | None,
        *,
        host: str | None = None,
        port: int | None = None,
        server_args: Sequence[str] = (),
    ) -> list[str]:
        # The baseline gets none of the speculative flags, not even the algorithm, so
        # SGLang loads no draft model.
        args = ["--model-path", deployment.model_path]
        if host is not None:
            args += ["--host", host]
        if port is not None:
            args += ["--port", str(port)]
        args += ["--tp-size", str(deployment.tp)]
        if deployment.ep is not None:
            args += ["--ep-size", str(deployment.ep)]
        if config is not None:
            args += self.speculative_flags(deployment, config)
        args += list(deployment.extra_args)
        args += list(server_args)
        return args

    def parse_launch_args(self, args: Sequence[str]) -> LaunchArgs:
        """Read launch_server arguments; others (memory, attention backend...) are ignored."""
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
        return LaunchArgs(**vars(known), ignored=ignored)

    def check_config(self, config: SpecConfig) -> str | None:
        return invalid_reason(config.num_steps, config.topk, config.num_draft_tokens)

    def config_from_server_info(self, info: Mapping[str, Any]) -> SpecConfig | None:
        if not info.get("speculative_algorithm"):
            return None
        try:
            return SpecConfig(
                int(info["speculative_num_steps"]),
                int(info["speculative_eagle_topk"]),
                int(info["speculative_num_draft_tokens"]),
            )
        except (KeyError, TypeError, ValueError):
            raise ServerError(
                "the server runs speculation but its server info lacks speculative_num_steps/"
                "speculative_eagle_topk/speculative_num_draft_tokens"
            ) from None

    def request_stats(self, meta: Mapping[str, Any]) -> RequestStats:
        """``meta_info`` of the last chunk: current SGLang sends the speculative counters
        only with the finishing chunk, older releases with every chunk. An abort arrives
        as ``finish_reason: {"type": "abort", "message": ...}`` on a normal stream."""
        completion = _number(meta.get("completion_tokens"))
        prompt: int | None = None
        with contextlib.suppress(TypeError, ValueError):
            prompt = int(meta.get("prompt_tokens", 0))
        verify = _number(meta.get("spec_verify_ct"))
        aborted = None
        reason = meta.get("finish_reason")
        if isinstance(reason, dict) and reason.get("type") == "abort":
            message = reason.get("message")
            aborted = f"aborted by the server: {message}" if message else "aborted by the server"
        histogram = meta.get("spec_accept_histogram")
        if not (isinstance(histogram, list) and all(_number(v) is not None for v in histogram)):
            histogram = None
        return RequestStats(
            completion_tokens=int(completion) if completion is not None else None,
            prompt_tokens=prompt,
            spec_verify_ct=int(verify) if verify is not None else None,
            spec_accept_length=_number(meta.get("spec_accept_length")),
            spec_accept_histogram=[int(v) for v in histogram] if histogram else None,
            aborted=aborted,
            simulated=meta.get("specbench_simulated") is True,
        )


#: The adapter instance everything shares (it holds no state).
SGLANG = SglangAdapter()

__all__ = ["SGLANG", "SglangAdapter"]
