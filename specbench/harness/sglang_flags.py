"""SGLang's spelling of the flags specbench sends, per release: one table for the flag
builder, the launch-argument parser serve-sim stands behind, and the config check.

SGLang 0.5.23 split the CUDA-graph batch limit per phase (python/sglang/srt/arg_groups/
fields/exec_.py: ``cuda_graph_max_bs_decode`` / ``cuda_graph_max_bs_prefill``, folded by
arg_groups/cuda_graph_hook.py into ``cuda_graph_config``). Its parser keeps argparse's
prefix matching, so the old ``--cuda-graph-max-bs`` is refused there as an ambiguous
option; ``/server_info`` (``ServerArgs.resolved_dict``) reports the resolved
``cuda_graph_config`` and ``cuda_graph_max_bs_decode``, and no ``cuda_graph_max_bs``.
Releases before it spell the one flag ``--cuda-graph-max-bs`` (server_args.py of
v0.4.6) and report ``cuda_graph_max_bs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SglangFlagSpelling:
    """The names one range of SGLang releases uses for the flags specbench sends."""

    #: The first release this spelling applies to.
    first_version: tuple[int, ...]
    #: The decode CUDA-graph batch limit (what the speculative and baseline servers
    #: are sized by, beside --max-running-requests).
    cuda_graph_max_bs: str
    #: Flags of this release that share ``cuda_graph_max_bs``'s prefix: registered by
    #: serve-sim's parser so that a prefix (the older name) is ambiguous there too.
    cuda_graph_siblings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``">= 0.5.23"``: the releases the spelling covers, for messages."""
        return ">= " + ".".join(str(part) for part in self.first_version)


#: Newest release first. The newest is also the spelling for an unknown version.
SPELLINGS: tuple[SglangFlagSpelling, ...] = (
    SglangFlagSpelling(
        (0, 5, 23),
        "--cuda-graph-max-bs-decode",
        cuda_graph_siblings=("--cuda-graph-max-bs-prefill",),
    ),
    SglangFlagSpelling((0, 4, 6), "--cuda-graph-max-bs"),
)
NEWEST = SPELLINGS[0]

#: Where each release's ``/server_info`` reports the decode graph's batch limit,
#: most resolved first (0.5.23: the folded config, then the per-phase field; older:
#: the single field).
_GRAPH_LIMIT_FIELDS = ("cuda_graph_max_bs_decode", "cuda_graph_max_bs")


def parse_version(text: object) -> tuple[int, ...] | None:
    """``"0.5.23"``, ``"0.5.23.post1"``, ``"v0.5.6rc2"`` -> (0, 5, 23) / (0, 5, 6)."""
    if not isinstance(text, str):
        return None
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


def spelling_for(version: object) -> SglangFlagSpelling:
    """The spelling of SGLang ``version`` (a string; None or unparsable: the newest).

    A release older than the oldest listed gets the oldest spelling: the project
    claims none older, and the config check still reads what the server reports.
    """
    parsed = parse_version(version)
    if parsed is None:
        return NEWEST
    for spelling in SPELLINGS:
        if parsed >= spelling.first_version:
            return spelling
    return SPELLINGS[-1]


def reported_graph_limit(info: Mapping[str, Any]) -> tuple[str, object] | None:
    """(field, value) of the decode CUDA-graph batch limit a server reports, or None.

    Read from whichever field the server's release has, so one check covers every
    release: ``cuda_graph_config.decode.max_bs`` (0.5.23, resolved), then
    ``cuda_graph_max_bs_decode``, then ``cuda_graph_max_bs`` (older).
    """
    config = info.get("cuda_graph_config")
    if isinstance(config, Mapping):
        decode = config.get("decode")
        if isinstance(decode, Mapping) and "max_bs" in decode:
            return "cuda_graph_config.decode.max_bs", decode["max_bs"]
    for name in _GRAPH_LIMIT_FIELDS:
        if name in info:
            return name, info[name]
    return None


__all__ = [
    "NEWEST",
    "SPELLINGS",
    "SglangFlagSpelling",
    "parse_version",
    "reported_graph_limit",
    "spelling_for",
]
