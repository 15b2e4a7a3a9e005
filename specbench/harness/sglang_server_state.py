"""What an SGLang server says about itself, checked against what specbench asked for.

``GET /server_info`` returns the flat resolved ``ServerArgs`` plus ``version`` and
``internal_states`` (python/sglang/srt/entrypoints/http_server.py). Everything here is a
pure function of that dictionary, so the launcher, the attach path, the sweep and the
tests share one reading of it:

* :func:`equal_launch_terms`: the batch limits both the baseline and the speculative
  server get. When speculating SGLang caps ``max_running_requests`` (48) and sizes its
  CUDA graphs differently; its own scripts/playground/bench_speculative.py passes
  ``--max-running-requests B`` and the graph batch limit B to every server it
  launches, so both sides run on equal terms. B is the highest concurrency of the
  sweep; the graph flag is spelled per release (:mod:`sglang_flags`).
* :func:`trim_server_info`: the small part of the info worth keeping per trial.
* :func:`launched_config_problems`: every way the running server differs from the one
  asked for (algorithm, draft path, tree shape, batch limits), or lacks the fields to
  tell.
* :func:`resolve_tau`: tau from per-request counters, cross-checked against the
  server's own average and against 1 <= tau <= num_steps + 1, with a labelled fallback
  to the server's average when a server sends no per-request counters.
* :func:`auto_config_for`: the tree SGLang picks by itself, per version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specbench.harness.sglang_flags import (
    NEWEST,
    SglangFlagSpelling,
    parse_version,
    reported_graph_limit,
)
from specbench.spec_config import SpecConfig

#: Arguments kept from ``/server_info``: the ones that change what a speculative
#: measurement means (ServerArgs field names in python/sglang/srt/server_args.py).
KEPT_SERVER_ARGS: tuple[str, ...] = (
    "version",
    "model_path",
    "tp_size",
    "ep_size",
    "dp_size",
    "max_running_requests",
    "cuda_graph_max_bs",
    "cuda_graph_max_bs_decode",
    "cuda_graph_config",
    "disable_cuda_graph",
    "disable_custom_all_reduce",
    "attention_backend",
    "page_size",
    "mem_fraction_static",
    "chunked_prefill_size",
    "schedule_policy",
    "disable_radix_cache",
    "speculative_algorithm",
    "speculative_draft_model_path",
    "speculative_num_steps",
    "speculative_eagle_topk",
    "speculative_num_draft_tokens",
    "speculative_attention_mode",
    "decode_log_interval",
    "launch_command",
    "specbench_simulated",
)

#: How tau was obtained (a trial column).
TAU_PER_REQUEST = "per_request"
TAU_SERVER_AVERAGE = "server_average"
TAU_UNAVAILABLE = "unavailable"
TAU_NOT_APPLICABLE = ""
#: Relative difference between the per-request tau and the server's own average above
#: which the trial is flagged. The average is refreshed only every ``decode_log_interval``
#: (40) decode steps and counts every request since the last flush, so it is loose.
TAU_SERVER_TOLERANCE = 0.15

#: SGLang's auto-chosen (num_steps, topk, num_draft_tokens) per architecture, newest
#: release first: (first version, architectures, triple). 0.5.23's speculative_hook.py
#: picks (3, 1, 4) for MiniMaxM2ForCausalLM; earlier server_args.py
#: auto_choose_speculative_params returns (5, 4, 8) for every architecture but a few.
_AUTO_CONFIGS: tuple[tuple[tuple[int, ...], frozenset[str], SpecConfig], ...] = (
    ((0, 5, 23), frozenset({"MiniMaxM2ForCausalLM"}), SpecConfig(3, 1, 4)),
)
_OLDER_AUTO = SpecConfig(5, 4, 8)


def equal_launch_terms(max_concurrency: int, spelling: SglangFlagSpelling = NEWEST) -> list[str]:
    """Batch limits for every server of a sweep, baseline and speculative alike, in the
    flag names of the release ``spelling`` describes."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1 (got {max_concurrency})")
    size = str(max_concurrency)
    return ["--max-running-requests", size, spelling.cuda_graph_max_bs, size]


def server_avg_accept_length(info: Mapping[str, Any]) -> float | None:
    """``internal_states[0].avg_spec_accept_length``, when the server reports one."""
    states = info.get("internal_states")
    if not isinstance(states, list) or not states or not isinstance(states[0], Mapping):
        return None
    value = states[0].get("avg_spec_accept_length")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def trim_server_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Version, the speculative/serving arguments and the server's accept length."""
    kept = {key: info[key] for key in KEPT_SERVER_ARGS if key in info}
    avg = server_avg_accept_length(info)
    if avg is not None:
        kept["avg_spec_accept_length"] = avg
    return kept


@dataclass(frozen=True)
class ExpectedServer:
    """What specbench launched: compared field by field with ``/server_info``."""

    config: SpecConfig | None
    algorithm: str | None = None
    draft_model_path: str | None = None
    max_running_requests: int | None = None
    cuda_graph_max_bs: int | None = None


def _differs(name: str, want: object, have: object) -> str:
    return f"{name} is {have!r}, not {want!r}"


def _spec_problems(info: Mapping[str, Any], expected: ExpectedServer) -> list[str]:
    config = expected.config
    assert config is not None
    problems: list[str] = []
    algorithm = info.get("speculative_algorithm")
    # SGLang resolves NEXTN (the target's own MTP layers) to EAGLE before it reports.
    accepted = {expected.algorithm.upper()} if expected.algorithm else set()
    if "NEXTN" in accepted:
        accepted.add("EAGLE")
    if accepted and str(algorithm or "").upper() not in accepted:
        problems.append(_differs("speculative_algorithm", expected.algorithm, algorithm))
    draft = info.get("speculative_draft_model_path")
    if expected.draft_model_path and draft != expected.draft_model_path:
        problems.append(_differs("speculative_draft_model_path", expected.draft_model_path, draft))
    names: tuple[str, ...] = (
        "speculative_num_steps",
        "speculative_eagle_topk",
        "speculative_num_draft_tokens",
    )
    wanted: tuple[int, ...] = (config.num_steps, config.topk, config.num_draft_tokens)
    if config.method in ("ngram", "dflash"):
        # SGLang derives steps and topk for these itself (NGRAM: from the BFS breadth;
        # DFLASH: one step of topk 1): only the verify width is what was asked for.
        names, wanted = names[2:], wanted[2:]
    for name, want in zip(names, wanted, strict=True):
        have = info.get(name)
        if have is None:
            problems.append(f"{name} is missing")
        elif not isinstance(have, int) or isinstance(have, bool) or have != want:
            problems.append(_differs(name, want, have))
    return problems


def launched_config_problems(info: Mapping[str, Any], expected: ExpectedServer) -> list[str]:
    """Every difference between the running server and the one asked for ([] = same).

    A field the server does not report is a problem too: a check that passes because
    it could not look would let a mislabelled trial through.
    """
    if "speculative_algorithm" not in info:
        return ["the server info has no speculative_algorithm field (not an SGLang server?)"]
    problems: list[str] = []
    if expected.config is None:
        if info.get("speculative_algorithm"):
            problems.append(f"the baseline server speculates ({info.get('speculative_algorithm')})")
    else:
        problems.extend(_spec_problems(info, expected))
    want = expected.max_running_requests
    if want is not None and info.get("max_running_requests") != want:
        problems.append(_differs("max_running_requests", want, info.get("max_running_requests")))
    want = expected.cuda_graph_max_bs
    if want is not None:
        reported = reported_graph_limit(info)
        if reported is None:
            problems.append("the server info reports no CUDA-graph batch limit")
        elif reported[1] != want:
            problems.append(_differs(reported[0], want, reported[1]))
    return problems


@dataclass(frozen=True)
class TauResolution:
    """tau for one load, where it came from, and what is wrong with it."""

    tau: float
    source: str
    server_tau: float | None = None
    problems: list[str] = field(default_factory=list)


def resolve_tau(
    per_request_tau: float,
    server_tau: float | None,
    config: SpecConfig | None,
) -> TauResolution:
    """tau with its source, cross-checked (see the module docstring).

    Fallback, labelled ``server_average``: when no request carried ``spec_verify_ct``
    (a server or proxy that drops per-request stats), tau is the server's own
    ``avg_spec_accept_length``, as SGLang's bench_serving does; when neither exists tau
    stays NaN with source ``unavailable`` and a problem, so nothing is recommended on
    a tau nobody measured.
    """
    if config is None:
        return TauResolution(float("nan"), TAU_NOT_APPLICABLE, server_tau)
    problems: list[str] = []
    if math.isfinite(per_request_tau):
        tau, source = per_request_tau, TAU_PER_REQUEST
        if server_tau is not None and abs(tau - server_tau) > TAU_SERVER_TOLERANCE * server_tau:
            problems.append(
                f"tau {tau:.2f} from the requests differs from the server's own average "
                f"{server_tau:.2f} by more than {TAU_SERVER_TOLERANCE:.0%}"
            )
    elif server_tau is not None:
        tau, source = server_tau, TAU_SERVER_AVERAGE
        problems.append(
            "no per-request acceptance stats: tau is the server's average "
            "(avg_spec_accept_length, refreshed every 40 decode steps)"
        )
    else:
        return TauResolution(
            float("nan"),
            TAU_UNAVAILABLE,
            None,
            ["no acceptance stats at all (no spec_verify_ct, no avg_spec_accept_length)"],
        )
    upper = config.num_steps + 1
    if not 1.0 - 1e-9 <= tau <= upper + 1e-9:
        problems.append(f"tau {tau:.2f} is outside 1 <= tau <= num_steps + 1 = {upper}")
    return TauResolution(tau, source, server_tau, problems)


def auto_config_for(architecture: str | None, version: object) -> SpecConfig:
    """The (num_steps, topk, num_draft_tokens) SGLang ``version`` picks by itself.

    An unknown version counts as the newest: a fresh install is the likeliest case.
    This is a prediction for ordering the search; the sweep still reads what a server
    resolved from its ``/server_info``.
    """
    parsed = parse_version(version)
    for first, architectures, config in _AUTO_CONFIGS:
        if architecture in architectures and (parsed is None or parsed >= first):
            return config
    return _OLDER_AUTO


__all__ = [
    "KEPT_SERVER_ARGS",
    "TAU_NOT_APPLICABLE",
    "TAU_PER_REQUEST",
    "TAU_SERVER_AVERAGE",
    "TAU_SERVER_TOLERANCE",
    "TAU_UNAVAILABLE",
    "ExpectedServer",
    "TauResolution",
    "auto_config_for",
    "equal_launch_terms",
    "launched_config_problems",
    "parse_version",
    "resolve_tau",
    "server_avg_accept_length",
    "trim_server_info",
]
