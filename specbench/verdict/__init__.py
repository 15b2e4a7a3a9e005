"""The decision, made once by the sweep (or ``predict``) and read by every surface.

``decide`` turns a run's rows into one ``Decision``: per-load picks, the mixed-load pick
and its break-even, what could not be launched and why (memory, the engine's limits),
the defaults a user would otherwise launch, and the headline that says it in one
sentence. results.json stores it; ``Decision.from_results`` reads it back.
"""

from specbench.verdict.decision import Decision, decide

__all__ = ["Decision", "decide"]
