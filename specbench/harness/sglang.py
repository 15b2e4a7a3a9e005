"""The SGLang engine adapter: its flags, its launch-argument parser, its rules, its stats.

Flag names follow sgl-project/sglang python/sglang/srt/server_args.py (and, from 0.5.23,
its arg_groups/fields/), spelled per release by :mod:`sglang_flags`; the per-request
counters follow its tokenizer_manager.py (``meta_info``); the server info follows its
``/server_info`` (older ``/get_server_info``) route.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from specbench.errors import BadInputError, InvalidConfigError, ServerError
from specbench.harness.adaptive_config import SGLANG_ADAPTIVE
from specbench.harness.claims import ClientView
from specbench.harness.engine import (
    Deployment,
    EngineAdapter,
    LaunchArgs,
    RequestSender,
    RequestStats,
)
from specbench.harness.sglang_flags import SglangFlagSpelling, spelling_for
from specbench.harness.sglang_served import served_deployment
from specbench.harness.sglang_server_state import (
    ExpectedServer,
    auto_config_for,
    equal_launch_terms,
    launched_config_problems,
    server_avg_accept_length,
)
from specbench.harness.stream_checks import as_count, as_rate, as_seconds
from specbench.safe_text import printable
from specbench.spec_config import EAGLE3, SpecConfig
from specbench.spec_methods import DRAFT_MODEL, engine_method, method

if TYPE_CHECKING:
    import aiohttp

    from specbench.harness.backend import LoadSpec
    from specbench.harness.claims import ClaimContext
    from specbench.harness.prompts import Prompt
    from specbench.model import TargetPreset
    from specbench.rundir.records import RequestRecord


class _ArgParser(argparse.ArgumentParser):
    """argparse that reports errors as BadInputError instead of exiting the process."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"--sglang-args: {message}")


def _add_graph_flags(parser: argparse.ArgumentParser, spelling: SglangFlagSpelling) -> None:
    """The release's CUDA-graph batch flag and its same-prefix siblings (kept apart)."""
    parser.add_argument(spelling.cuda_graph_max_bs, dest="cuda_graph_max_bs", type=int)
    for index, sibling in enumerate(spelling.cuda_graph_siblings):
        parser.add_argument(sibling, dest=f"_sibling_{index}")


#: SGLang's own n-gram parameters (spec_methods), accepted by the launch-line parser.
_NGRAM_PARAMS = tuple(p.name for p in engine_method("ngram", "sglang").params)


def sglang_algorithm(deployment: Deployment, config: SpecConfig) -> str:
    """SGLang's ``--speculative-algorithm`` for ``config``: the preset's own algorithm for
    EAGLE3 configurations (an EAGLE-1/2 head takes the same numbers), else the method's
    SGLang name (NEXTN, STANDALONE, NGRAM, DFLASH)."""
    if config.method == EAGLE3 and deployment.algorithm.upper() in ("EAGLE", "EAGLE3"):
        return deployment.algorithm
    return engine_method(config.method, "sglang").name


def sglang_method_flags(config: SpecConfig) -> list[str]:
    """The flags of ``config``'s shape and parameters on SGLang (see config_flags)."""
    offered = engine_method(config.method, "sglang")
    if config.method == "dflash":
        flags = ["--speculative-dflash-block-size", str(config.num_draft_tokens)]
    elif config.method == "ngram":
        flags = ["--speculative-num-draft-tokens", str(config.num_draft_tokens)]
    else:
        flags = [
            "--speculative-num-steps",
            str(config.num_steps),
            "--speculative-eagle-topk",
            str(config.topk),
            "--speculative-num-draft-tokens",
            str(config.num_draft_tokens),
        ]
    for name, value in config.params:
        if offered.param(name) is None:
            raise BadInputError(
                f"SGLang's {offered.name} has no parameter {name} "
                f"(it takes {', '.join(p.name for p in offered.params) or 'none'})"
            )
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


class SglangAdapter(EngineAdapter):
    """``python -m sglang.launch_server`` and its native API."""

    name = "sglang"
    method_catalogue = "sglang"
    title = "SGLang"
    adaptive = SGLANG_ADAPTIVE
    server_module = "sglang.launch_server"
    ready_path = "/health_generate"
    server_info_paths = ("/server_info", "/get_server_info")
    distribution = "sglang"

    def available(self) -> bool:
        """True when this machine can launch SGLang: the package imports and CUDA is
        usable (what ``--backend auto`` looks for)."""
        if importlib.util.find_spec("sglang") is None:
            return False
        try:
            import torch
        except Exception:
            return False
        return bool(torch.cuda.is_available())

    async def request_sender(
        self,
        http: aiohttp.ClientSession,
        endpoint: str,
        load: LoadSpec,
        claims: ClaimContext,
    ) -> RequestSender:
        """The native streamed ``/generate`` (harness.native_client)."""
        from specbench.harness.native_client import GENERATE_PATH, native_request

        url = endpoint + GENERATE_PATH

        async def send(prompt: Prompt, max_new_tokens: int) -> RequestRecord:
            return await native_request(http, url, prompt, load, self, max_new_tokens, claims)

        return send

    def default_config(self, target: TargetPreset) -> SpecConfig | None:
        """SGLang's automatic (num_steps, topk, num_draft_tokens) for ``target``: by its
        architecture and the installed release (the newest known without one), the
        preset's own auto_config where the architecture is unknown. The sweep launches
        it with explicit flags and the launched-config check reads back what the server
        resolved, so a wrong guess is measured under its own numbers, never mislabelled."""
        if target.architecture is None:
            return target.auto_config
        return auto_config_for(target.architecture, self.local_version())

    def server_tau(self, info: Mapping[str, Any]) -> float | None:
        return server_avg_accept_length(info)

    def manifest_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return {"sglang_version": info.get("version")}

    def config_flags(self, config: SpecConfig) -> list[str]:
        """The shape flags of ``config``'s method: EAGLE-style methods take the tree's
        three numbers; NGRAM its verify width (--speculative-num-draft-tokens, SGLang
        sets topk from the BFS breadth and the steps from both); DFLASH its block, the
        verify window (SGLang forces one step of topk 1); then the method's own
        parameters as their ``--speculative-*`` flags."""
        return sglang_method_flags(config)

    def speculative_flags(self, deployment: Deployment, config: SpecConfig) -> list[str]:
        algorithm = sglang_algorithm(deployment, config)
        flags = ["--speculative-algorithm", algorithm]
        if method(config.method).draft == DRAFT_MODEL:
            flags += ["--speculative-draft-model-path", deployment.draft_for(config.method)]
        return flags + self.config_flags(config)

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
        if deployment.max_batch is not None:
            args += equal_launch_terms(
                deployment.max_batch, spelling_for(deployment.engine_version)
            )
        args += list(deployment.extra_args)
        args += list(server_args)
        return args

    def parse_launch_args(self, args: Sequence[str], version: str | None = None) -> LaunchArgs:
        """Read launch_server arguments of SGLang ``version`` (None: the newest); others
        (memory, attention backend...) are ignored.

        Like SGLang's own parser, a prefix of a flag is accepted where it names one flag
        and refused where it names several, so the older ``--cuda-graph-max-bs`` fails
        here exactly as it fails on 0.5.23 (ambiguous option).
        """
        spelling = spelling_for(version)
        parser = _ArgParser(prog="sglang-args", add_help=False, allow_abbrev=True)
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
        # Every method's own flags parse (their values are the engine's to resolve).
        parser.add_argument("--speculative-dflash-block-size", dest="_dflash_block", type=int)
        for param in _NGRAM_PARAMS:
            parser.add_argument("--" + param.replace("_", "-"), dest="_" + param, type=int)
        parser.add_argument("--max-running-requests", dest="max_running_requests", type=int)
        _add_graph_flags(parser, spelling)
        known, ignored = parser.parse_known_args(list(args))
        values = {k: v for k, v in vars(known).items() if not k.startswith("_")}
        return LaunchArgs(**values, ignored=ignored)

    def check_config(self, config: SpecConfig) -> str | None:
        # A SpecConfig holds SGLang's tree rules by construction: any one can run.
        return None

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
        except InvalidConfigError as exc:
            raise ServerError(f"the server reports a configuration it cannot run ({exc})") from None

    def config_problems(
        self, info: Mapping[str, Any], deployment: Deployment, config: SpecConfig | None
    ) -> list[str]:
        drafts = config is not None and method(config.method).draft == DRAFT_MODEL
        expected = ExpectedServer(
            config,
            algorithm=sglang_algorithm(deployment, config) if config is not None else None,
            draft_model_path=deployment.draft_for(config.method)
            if config is not None and drafts
            else None,
            max_running_requests=deployment.max_batch,
            cuda_graph_max_bs=deployment.max_batch,
        )
        return launched_config_problems(info, expected)

    def served_deployment(self, info: Mapping[str, Any], base: Deployment) -> Deployment:
        return served_deployment(info, base)

    def claim_problem(self, stats: RequestStats, view: ClientView) -> str | None:
        """SGLang's counts: ``completion_tokens`` is cumulative, so the finishing chunk's
        equals the streamed count; every token comes from a verify step (prefill's
        included in ``spec_verify_ct``), so tau = tokens / steps in [1, num_steps + 1];
        ``e2e_latency`` is arrival to finish in the tokenizer manager."""
        return super().claim_problem(stats, view)

    def request_stats(self, meta: Mapping[str, Any]) -> RequestStats:
        """``meta_info`` of the last chunk: current SGLang sends the speculative counters
        only with the finishing chunk, older releases with every chunk. An abort arrives
        as ``finish_reason: {"type": "abort", "message": ...}`` on a normal stream."""
        aborted = None
        reason = meta.get("finish_reason")
        if isinstance(reason, dict) and reason.get("type") == "abort":
            message = reason.get("message")
            aborted = (
                f"aborted by the server: {printable(str(message))}"
                if message
                else "aborted by the server"
            )
        # tokenizer_manager.py sets e2e_latency (seconds, arrival to finish) on the
        # finishing chunk. Counts that cannot exist (NaN, negative, fractional) read as
        # absent here; the load generator fails such a request before it gets this far
        # (stream_checks).
        # A latency that is a number but impossible (negative, NaN) is kept, so that the
        # claim check fails the request instead of falling back to the client clock.
        e2e_s = as_seconds(meta.get("e2e_latency"))
        raw_histogram = meta.get("spec_accept_histogram")
        histogram = (
            [as_count(v) for v in raw_histogram] if isinstance(raw_histogram, list) else None
        )
        return RequestStats(
            server_e2e_ms=e2e_s * 1000.0 if e2e_s is not None else None,
            completion_tokens=as_count(meta.get("completion_tokens")),
            prompt_tokens=as_count(meta.get("prompt_tokens", 0)),
            spec_verify_ct=as_count(meta.get("spec_verify_ct")),
            spec_accept_length=as_rate(meta.get("spec_accept_length")),
            spec_accept_histogram=(
                [v for v in histogram if v is not None]
                if histogram and None not in histogram
                else None
            ),
            aborted=aborted,
            simulated=meta.get("specbench_simulated") is True,
        )


#: The adapter instance everything shares (it holds no state).
SGLANG = SglangAdapter()

__all__ = ["SGLANG", "SglangAdapter"]
