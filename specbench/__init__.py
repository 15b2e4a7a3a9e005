"""specbench: measure, predict and gate speculative-decoding speedups on your hardware.

The package is split by the direction data flows, and imports only run downwards
(checked by import-linter, see pyproject.toml): ``errors``, ``schema``,
``spec_config`` and ``process`` (process hygiene: process groups, pidfiles, shared
memory) at the bottom; ``rundir`` (the run-directory contract); ``model`` and
``topology`` (what the machine is, what speculation should do on it); ``harness`` (what
an engine really does); ``sweeps`` and ``serve_sim``; ``report`` and ``gate`` (what to
launch, and whether a change regressed); ``cli`` on top.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
