"""The deployment a run measured, recorded once so that every line it prints is that server.

A sweep knows what it served: in launch mode the deployment it launched every server
with (the batch limit included: SGLang caps a speculative server at 48 running requests
otherwise); in attach mode what the attached server reports about itself (its model, its
parallelism, its batch limits), not the preset's idea of it. The sweep stores that
deployment in the manifest (``extra["served"]``); the results, the console and the report
build their launch lines from the record, so a pasted line starts the server that was
measured. Paths are stored expanded (a preset's ``${SPECBENCH_TINY_MODELS}`` as the folder
it named), so a report written elsewhere still prints a line that runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from specbench.harness.engine import Deployment

#: The manifest ``extra`` key of the record.
SERVED_KEY = "served"


def deployment_record(deployment: Deployment) -> dict[str, Any]:
    """The JSON form of ``deployment`` (paths expanded where the environment can)."""
    return {
        "model_path": os.path.expandvars(deployment.model_path),
        "draft_model_path": os.path.expandvars(deployment.draft_model_path),
        "algorithm": deployment.algorithm,
        "tp": deployment.tp,
        "ep": deployment.ep,
        "extra_args": list(deployment.extra_args),
        "max_batch": deployment.max_batch,
        "draft_tp": deployment.draft_tp,
        "engine_version": deployment.engine_version,
    }


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def deployment_from_record(data: object) -> Deployment | None:
    """The deployment a manifest recorded, or None (a run from before the record, or a
    record that is not one: the caller falls back to the preset)."""
    if not isinstance(data, Mapping):
        return None
    model, draft, algorithm = (
        data.get("model_path"),
        data.get("draft_model_path"),
        data.get("algorithm"),
    )
    tp = _int_or_none(data.get("tp"))
    extra = data.get("extra_args", [])
    if not (isinstance(model, str) and isinstance(draft, str) and isinstance(algorithm, str)):
        return None
    if tp is None or not isinstance(extra, list):
        return None
    version = data.get("engine_version")
    return Deployment(
        model_path=model,
        draft_model_path=draft,
        algorithm=algorithm,
        tp=tp,
        ep=_int_or_none(data.get("ep")),
        extra_args=tuple(str(arg) for arg in extra),
        max_batch=_int_or_none(data.get("max_batch")),
        draft_tp=_int_or_none(data.get("draft_tp")),
        engine_version=str(version) if version is not None else None,
    )


def printed_deployment(extra: Mapping[str, Any], fallback: Deployment) -> Deployment:
    """The deployment a run's launch lines name: the manifest's record (``extra`` is the
    manifest's ``extra``), or ``fallback`` for a run recorded before it."""
    return deployment_from_record(extra.get(SERVED_KEY)) or fallback


def without_flags(
    args: Sequence[str], flags: Iterable[str], switches: Iterable[str] = ()
) -> tuple[str, ...]:
    """``args`` less each of ``flags`` with its value (``--flag V`` or ``--flag=V``) and
    each of ``switches`` (flags that take no value): what a preset adds that the attached
    server's own report replaces."""
    valued, bare = set(flags), set(switches)
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in valued:
            skip = "=" not in arg
            continue
        if arg in bare:
            continue
        out.append(arg)
    return tuple(out)


__all__ = [
    "SERVED_KEY",
    "deployment_from_record",
    "deployment_record",
    "printed_deployment",
    "without_flags",
]
