"""The measurement harness: backends, load, per-request records and metrics.

Only the light, dependency-free modules are re-exported here. The SGLang backend, the
process manager, the HTTP load generator and serve-sim are imported from their own
modules (``specbench.harness.sglang_backend`` ...) so that importing the harness does
not pull in aiohttp, and so that ``specbench.sweeps.rundir`` (which imports
``specbench.harness.records``) does not import itself in a cycle.
"""

from __future__ import annotations

from specbench.harness.backend import Backend, LoadSpec, ProgressCallback, Session
from specbench.harness.metrics import ConfigMetrics, summarize
from specbench.harness.prompts import (
    Prompt,
    builtin_prompts,
    estimate_tokens,
    load_dataset,
    prompts_sha256,
    workload_fingerprint,
)
from specbench.harness.records import RequestRecord, read_records, write_records
from specbench.harness.sim_backend import SimBackend, SimSession
from specbench.harness.sim_engine import SimEngine, StepResult

__all__ = [
    "Backend",
    "ConfigMetrics",
    "LoadSpec",
    "ProgressCallback",
    "Prompt",
    "RequestRecord",
    "Session",
    "SimBackend",
    "SimEngine",
    "SimSession",
    "StepResult",
    "builtin_prompts",
    "estimate_tokens",
    "load_dataset",
    "prompts_sha256",
    "read_records",
    "summarize",
    "workload_fingerprint",
    "write_records",
]
