"""specbench: measure, predict and gate speculative-decoding speedups on your hardware.

The package is split by the direction data flows, and imports only run downwards
(checked by import-linter, see pyproject.toml): ``errors``, ``schema``,
``spec_config`` and ``process`` (process hygiene: process groups, pidfiles, shared
memory) at the bottom; ``rundir`` (the run-directory contract); ``model`` and
``topology`` (what the machine is, what speculation should do on it); ``harness`` (what
an engine really does); ``sweeps`` and ``serve_sim``; ``report`` and ``gate`` (what to
launch, and whether a change regressed); ``cli`` and ``api`` on top.

From Python, three functions (in ``specbench.api``, loaded on first use so that
``import specbench`` and the CLI stay fast)::

    results = specbench.sweep("minimax-m2.7", backend="sim", configs=["3,1,4"])
    again = specbench.open_run(results.run_dir)
    table = specbench.predict("minimax-m2.7", hardware="h200-nvlink")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specbench.api import ModelTable, Results, open_run, predict, sweep

__version__ = "0.1.0"

_API = frozenset({"ModelTable", "Results", "open_run", "predict", "sweep"})


def __getattr__(name: str) -> Any:
    """``specbench.sweep`` and the rest of the public API, imported on first use."""
    if name in _API:
        # By name, not an import statement: the root package is imported by every
        # module, so a static import of the top layer here would read as every layer
        # importing it.
        api = importlib.import_module("specbench.api")
        return getattr(api, name)
    raise AttributeError(f"module 'specbench' has no attribute {name!r}")


__all__ = ["ModelTable", "Results", "__version__", "open_run", "predict", "sweep"]
