"""The engine adapter contract: everything that differs between serving engines.

An adapter owns one engine's spelling of a deployment: the one builder of its launch
arguments (used by the launcher and by every launch line the report or the CLI prints),
the inverse parser of those arguments (serve-sim stands in for the engine with it), its
rules for a speculative configuration, and how it reports acceptance per request and in
its server info. Adding an engine is one new module with one ``EngineAdapter`` subclass,
registered in ``specbench.harness.engines``.

The sweep and the report hold one adapter, resolved once from ``--backend`` (or handed
in ready-made), and ask it, never its name, for everything engine-specific: how its
servers are obtained (launched, attached, or simulated in process), which options it
refuses, where tau comes from and how it is cross-checked, and what of its server info
is kept.
"""

from __future__ import annotations

import importlib.metadata
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from specbench.harness.claims import (
    ClientView,
    latency_problem,
    token_count_problem,
    verify_steps_problem,
)
from specbench.harness.net import fetch_server_info
from specbench.harness.sglang_server_state import KEPT_SERVER_ARGS, TauResolution, resolve_tau
from specbench.harness.shell_line import shell_line
from specbench.spec_config import EAGLE3, SpecConfig

if TYPE_CHECKING:
    import aiohttp

    from specbench.harness.adaptive_config import AdaptiveFormat
    from specbench.harness.backend import Backend, LoadSpec
    from specbench.harness.claims import ClaimContext
    from specbench.harness.prompts import Prompt
    from specbench.model import HardwareProfile, TargetPreset
    from specbench.rundir.records import RequestRecord

#: One request of a load on the engine's wire protocol: (prompt, answer token budget)
#: -> its timed record; a refused connection raises aiohttp.ClientConnectorError.
RequestSender = Callable[["Prompt", int], Awaitable["RequestRecord"]]

#: Placeholders a launch line shows when the run directory does not know the paths.
UNKNOWN_MODEL = "<target-model-path>"
UNKNOWN_DRAFT = "<draft-model-path>"


class TargetLike(Protocol):
    """The fields of specbench.model.TargetPreset a deployment is built from."""

    @property
    def model_path(self) -> str: ...
    @property
    def draft_model_path(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def default_tp(self) -> int: ...
    @property
    def default_ep(self) -> int | None: ...
    @property
    def extra_server_args(self) -> tuple[str, ...]: ...
    @property
    def parallel_options(self) -> tuple[tuple[int, int | None], ...]: ...


@dataclass(frozen=True)
class Deployment:
    """What to serve and how wide: the engine-neutral input of every launch line."""

    model_path: str = UNKNOWN_MODEL
    draft_model_path: str = UNKNOWN_DRAFT
    algorithm: str = "EAGLE3"
    tp: int = 1
    #: Expert parallelism; None leaves the engine's default (no EP).
    ep: int | None = None
    extra_args: tuple[str, ...] = ()
    #: The largest batch every server of a sweep is sized for (its highest concurrency):
    #: baseline and speculative servers get the same limit, so neither runs on other
    #: terms (None: the engine's defaults).
    max_batch: int | None = None
    #: Tensor parallelism of the draft model, where the engine lets it differ (vLLM).
    draft_tp: int | None = None
    #: The engine release the line is for, where its flag names differ by release
    #: (SGLang 0.5.23's per-phase CUDA-graph flags); None: the newest spelling.
    engine_version: str | None = None
    #: The draft checkpoint of each method other than the preset's own (``algorithm``
    #: with ``draft_model_path``): ``(method, path)`` pairs from the preset's methods.
    method_drafts: tuple[tuple[str, str], ...] = ()

    def draft_for(self, method: str) -> str:
        """The draft checkpoint ``method`` loads (the preset's own draft for EAGLE3 and
        for the method the preset's algorithm names; UNKNOWN_DRAFT where none is known)."""
        if method in (EAGLE3, self.algorithm.lower()):
            return self.draft_model_path  # what a run directory or a server recorded
        return dict(self.method_drafts).get(method, UNKNOWN_DRAFT)

    @classmethod
    def of(
        cls,
        target: TargetLike | None,
        *,
        tp: int | None = None,
        model_path: str | None = None,
        draft_model_path: str | None = None,
        max_batch: int | None = None,
        engine_version: str | None = None,
    ) -> Deployment:
        """The deployment of ``target`` at ``tp`` (None: the target's own TP).

        Expert parallelism follows the TP actually served: the preset lists the
        (tp, ep) pairs it is deployed with (MiniMax-M2: ``--tp-size 4``, or
        ``--tp-size 8 --ep-size 8``), and an EP size written for one TP is never carried
        to another. Explicit paths (what a run directory recorded) win over the preset's.
        """
        if target is None:
            return cls(
                model_path=model_path or UNKNOWN_MODEL,
                draft_model_path=draft_model_path or UNKNOWN_DRAFT,
                tp=tp if tp is not None else 1,
                max_batch=max_batch,
                engine_version=engine_version,
            )
        served_tp = tp if tp is not None else target.default_tp
        # Presets of locally built models name their folder by environment variable
        # (tiny-llama: ${SPECBENCH_TINY_MODELS}); expanded here, where a server is built.
        model_path = os.path.expandvars(model_path or target.model_path)
        draft_model_path = os.path.expandvars(draft_model_path or target.draft_model_path)
        drafts = tuple(
            (name, os.path.expandvars(path))
            for name, path in getattr(target, "method_drafts", ())
            if path is not None
        )
        pairs = [(target.default_tp, target.default_ep), *target.parallel_options]
        ep = next((e for t, e in pairs if t == served_tp), None)
        return cls(
            model_path=model_path,
            draft_model_path=draft_model_path,
            algorithm=target.algorithm,
            tp=served_tp,
            ep=ep if ep is not None and ep > 1 else None,
            extra_args=tuple(str(a) for a in target.extra_server_args),
            max_batch=max_batch,
            draft_tp=getattr(target, "draft_tp", None),
            engine_version=engine_version,
            method_drafts=drafts,
        )


@dataclass
class LaunchArgs:
    """The subset of an engine's launch arguments specbench acts on (parsed back)."""

    model_path: str | None = None
    host: str | None = None
    port: int | None = None
    tp: int | None = None
    algorithm: str | None = None
    draft_model_path: str | None = None
    num_steps: int | None = None
    topk: int | None = None
    num_draft_tokens: int | None = None
    max_running_requests: int | None = None
    cuda_graph_max_bs: int | None = None
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RequestStats:
    """What one finished request says about itself, in engine-neutral names."""

    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    #: Verify forwards of the request; tau = completion_tokens / spec_verify_ct.
    spec_verify_ct: int | None = None
    spec_accept_length: float | None = None
    #: Draft tokens accepted over the request (vLLM); tau then counts verify + accepted.
    spec_accepted_tokens: int | None = None
    #: Verify steps by number of accepted drafts (index j: exactly j accepted).
    spec_accept_histogram: list[int] | None = None
    #: Why the engine aborted the request, when it did (the stream still ends normally).
    aborted: str | None = None
    #: The request's latency as the server measured it (arrival to finish): free of
    #: the client's connection setup and of its own queueing.
    server_e2e_ms: float | None = None
    simulated: bool = False


class EngineAdapter(ABC):
    """One serving engine, as specbench launches, checks and reads it."""

    #: Short name, as the manifest stores it ("sglang").
    name: str
    #: The name as its users write it, for "SGLang flags" (empty: ``name``). The
    #: simulator keeps SGLang's: the lines it prints are SGLang's.
    title: str = ""
    #: ``python -m <server_module>`` starts a server.
    server_module: str
    #: Answers 200 once the server can generate (non-200 or refused while starting).
    ready_path: str
    #: Where the server describes itself, newest path first.
    server_info_paths: tuple[str, ...]
    #: True when the engine drafts a chain only (topk 1): its search space is k alone.
    chain_only: bool = False
    #: The engine whose spelling of each speculative method applies (spec_methods:
    #: "sglang", "vllm"); None for an engine that runs EAGLE3 only.
    method_catalogue: str | None = None
    #: The engine's own format for speculation that follows the batch size (None: it
    #: has none); ``specbench export`` writes it.
    adaptive: AdaptiveFormat | None = None
    #: The engines whose adaptive configs this engine's measurements can be written for
    #: (empty: its own alone); the simulator stands for SGLang and vLLM alike.
    adaptive_for: tuple[str, ...] = ()
    #: POST here between loads to drop the prefix cache; a 404 means "not offered".
    flush_path: str = "/flush_cache"
    #: Shared-memory files the server creates (a glob); orphans are removed after a stop.
    shm_pattern: str | None = None
    #: The engine's distribution name, where its flags are spelled per release.
    distribution: str | None = None
    #: True when the engine runs inside specbench (the simulator): nothing is launched
    #: or attached, every number comes from the performance model, and a run needs a
    #: hardware profile to simulate.
    in_process: bool = False
    #: Server-info fields kept with each trial: the ones that change what a speculative
    #: measurement means, under the names SGLang's ServerArgs gives them (serve-sim
    #: speaks the same; an engine with other names lists its own).
    kept_info_fields: tuple[str, ...] = KEPT_SERVER_ARGS

    def available(self) -> bool:
        """True when ``--backend auto`` may pick this engine on this machine (default:
        never; the registry says which engines auto considers)."""
        return False

    def refused_option(self, *, endpoint: bool, launch_cmd: bool, server_args: bool) -> str | None:
        """Why this engine cannot run with the given sweep options (one line naming the
        option), None when it can; an engine with servers accepts them all."""
        return None

    def in_process_backend(
        self,
        target: TargetPreset,
        profile: HardwareProfile,
        *,
        seed: int,
        perturbation: float,
    ) -> Backend:
        """The backend of an ``in_process`` engine, simulating ``target`` on ``profile``.

        Engines with servers never get here: the sweep launches or attaches to them
        through ServerBackend.
        """
        raise NotImplementedError(f"{self.name} runs servers, not in process")

    def default_config(self, target: TargetPreset) -> SpecConfig | None:
        """The configuration the engine picks by itself when launched with a draft and
        no shape flags (measured and labelled as its automatic choice), or None where
        it has none: vLLM's chain length is always given, so it has no such choice."""
        return None

    def local_version(self) -> str | None:
        """The engine release installed beside specbench (what ``python -m`` with this
        interpreter starts), or None: not installed, or spelled the same in every
        release specbench knows."""
        if self.distribution is None:
            return None
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    @abstractmethod
    def config_flags(self, config: SpecConfig) -> list[str]:
        """The flags that carry ``config``'s three numbers."""

    @abstractmethod
    def speculative_flags(self, deployment: Deployment, config: SpecConfig) -> list[str]:
        """Every flag that turns speculation on: algorithm, draft, ``config_flags``."""

    @abstractmethod
    def launch_args(
        self,
        deployment: Deployment,
        config: SpecConfig | None,
        *,
        host: str | None = None,
        port: int | None = None,
        server_args: Sequence[str] = (),
    ) -> list[str]:
        """The server's arguments (without interpreter and module); the one builder.

        ``config`` None is the no-speculation baseline. ``server_args`` come last so a
        user's flags override the preset's (argparse keeps the last value).
        """

    @abstractmethod
    def parse_launch_args(self, args: Sequence[str]) -> LaunchArgs:
        """The inverse of ``launch_args``: what a launch line asks for."""

    @abstractmethod
    def check_config(self, config: SpecConfig) -> str | None:
        """Why the engine would reject or crash on ``config``; None when it accepts it."""

    @abstractmethod
    def config_from_server_info(self, info: Mapping[str, Any]) -> SpecConfig | None:
        """The configuration a running server was started with (None: no speculation)."""

    @abstractmethod
    def config_problems(
        self, info: Mapping[str, Any], deployment: Deployment, config: SpecConfig | None
    ) -> list[str]:
        """How a launched server's own description differs from what was asked ([]: not).

        A field the server does not report counts as a difference: a check that passes
        because it could not look would let a mislabelled trial through.
        """

    @abstractmethod
    def request_stats(self, meta: Mapping[str, Any]) -> RequestStats:
        """Acceptance and token counts from the last streamed chunk's metadata."""

    def claim_problem(self, stats: RequestStats, view: ClientView) -> str | None:
        """Why what the server said about one request cannot be true, given what the
        client saw of it (None: every claim holds). The rule of engines whose finishing
        count is the streamed count and whose verify steps produced every token
        (SGLang); an engine that counts otherwise overrides it."""
        problem = token_count_problem(view, stats.completion_tokens)
        if problem is None:
            tokens = stats.completion_tokens
            problem = verify_steps_problem(
                view, tokens if tokens is not None else view.streamed_tokens, stats.spec_verify_ct
            )
        if problem is None and stats.server_e2e_ms is not None:
            problem = latency_problem(view, stats.server_e2e_ms)
        return problem

    def counters_problem(
        self, counters: Mapping[str, Any], tokens: int, config: SpecConfig | None
    ) -> str | None:
        """Why the engine's server-wide counter delta over a load cannot be true, given
        the ``tokens`` the client received in it (None: it can); engines without
        counters never call it."""
        return None

    async def request_sender(
        self,
        http: aiohttp.ClientSession,
        endpoint: str,
        load: LoadSpec,
        claims: ClaimContext,
    ) -> RequestSender:
        """How the load generator sends one request to this engine's server and reads
        its stream (the wire protocol), ready for ``load``; each request's claims are
        checked with ``claims``. ServerError when the server cannot take requests
        (an OpenAI-style server that names no model). Engines that run in process have
        no server and never get here."""
        raise NotImplementedError(f"{self.name} has no server to send requests to")

    def server_tau(self, info: Mapping[str, Any]) -> float | None:
        """The server's own average acceptance length in its info (None: it reports
        none, the default)."""
        return None

    def trim_server_info(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """The small part of a server's info stored with each trial: ``kept_info_fields``
        and the server's own accept length."""
        kept = {key: info[key] for key in self.kept_info_fields if key in info}
        tau = self.server_tau(info)
        if tau is not None:
            kept["avg_spec_accept_length"] = tau
        return kept

    def resolve_tau(
        self, per_request_tau: float, info: Mapping[str, Any], config: SpecConfig | None
    ) -> TauResolution:
        """tau of one load with its source, cross-checked against the server's own
        average and 1 <= tau <= num_steps + 1 (sglang_server_state.resolve_tau)."""
        return resolve_tau(per_request_tau, self.server_tau(info), config)

    def manifest_fields(self, info: Mapping[str, Any]) -> dict[str, Any]:
        """Engine-specific fields of the manifest's backend description. The
        ``sglang_version`` field predates other engines, so every engine writes it
        (None unless the engine is SGLang) and run directories keep one shape."""
        return {"sglang_version": None}

    def served_deployment(self, info: Mapping[str, Any], base: Deployment) -> Deployment:
        """The deployment an attached server runs, from its own description ``info``;
        ``base`` (the preset's) supplies what the server does not report. The default
        reads nothing: an engine that describes itself overrides it."""
        return base

    def fetch_info(self, endpoint: str) -> dict[str, Any]:
        """What a running server says about itself (its server-info route)."""
        return fetch_server_info(endpoint.rstrip("/"), self.server_info_paths)

    def spec_counters(self, endpoint: str) -> dict[str, Any] | None:
        """The engine's server-wide speculative counters now (None: it exposes none)."""
        return None

    def command(self, launch_args: Sequence[str], python: str) -> list[str]:
        """The full command: interpreter, ``-m`` module, arguments."""
        return [python, "-m", self.server_module, *launch_args]

    def launch_line(self, deployment: Deployment, config: SpecConfig) -> tuple[list[str], str]:
        """(speculative flags, a copyable shell line) for reports and the CLI.

        Built by ``launch_args`` like every launched server, without host and port.
        """
        line = self.command(self.launch_args(deployment, config), python="python")
        return self.speculative_flags(deployment, config), shell_line(line)

    def baseline_launch_line(self, deployment: Deployment) -> str:
        """The same server without speculation, as a copyable shell line (what to run
        at the loads where speculation does not pay)."""
        return shell_line(self.command(self.launch_args(deployment, None), python="python"))


__all__ = [
    "UNKNOWN_DRAFT",
    "UNKNOWN_MODEL",
    "Deployment",
    "EngineAdapter",
    "LaunchArgs",
    "RequestSender",
    "RequestStats",
    "TargetLike",
]
