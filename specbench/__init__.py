"""specbench: measure, predict and gate speculative-decoding speedups on your hardware.

The package is split by the direction data flows: ``topology`` (what the machine is),
``model`` (what speculation should do on it), ``harness`` (what it really does),
``sweeps`` (searching the configuration space) and ``reports`` (what to launch, and
whether a change regressed).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
