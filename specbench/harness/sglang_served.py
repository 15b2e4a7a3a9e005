"""The deployment an attached SGLang server runs, read from its own ``/server_info``.

``/server_info`` is ``ServerArgs.resolved_dict()`` plus ``version`` (SGLang 0.5.23,
python/sglang/srt/utils/common.py ``build_server_info``): ``model_path``, ``tp_size``,
``ep_size``, ``max_running_requests``, the decode graph limit (read per release by
:func:`sglang_flags.reported_graph_limit`), ``speculative_algorithm`` and
``speculative_draft_model_path``. The launch line printed for an attached run is built from
these, so that it starts the server that was measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from specbench.harness.engine import Deployment
from specbench.harness.sglang_flags import reported_graph_limit, spelling_for


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def served_deployment(info: Mapping[str, Any], base: Deployment) -> Deployment:
    """The deployment ``info`` describes; ``base`` (the preset's) fills what the server
    leaves out, and keeps the preset's other flags (``--trust-remote-code``).

    A graph limit other than the running-request limit is spelled out after the
    preset's flags (the last value wins), so the line keeps both as the server had them.
    """
    running = _count(info.get("max_running_requests"))
    graph = reported_graph_limit(info)
    graph_limit = _count(graph[1]) if graph is not None else None
    version = _text(info.get("version")) or base.engine_version
    extra = base.extra_args
    if graph_limit is not None and graph_limit != running:
        extra = (*extra, spelling_for(version).cuda_graph_max_bs, str(graph_limit))
    ep = _count(info.get("ep_size"))
    return dataclasses.replace(
        base,
        model_path=_text(info.get("model_path")) or base.model_path,
        draft_model_path=_text(info.get("speculative_draft_model_path")) or base.draft_model_path,
        algorithm=_text(info.get("speculative_algorithm")) or base.algorithm,
        tp=_count(info.get("tp_size")) or base.tp,
        ep=(ep if ep > 1 else None) if ep is not None else base.ep,
        extra_args=extra,
        max_batch=running if running is not None else base.max_batch,
        engine_version=version,
    )


__all__ = ["served_deployment"]
