"""Searching the configuration space: space and validity, strategies, storage, runner.

Import from the submodules (``specbench.sweeps.runner.run_sweep``, ``.space``,
``.search``, ``.storage``, ``.rundir``); this package module stays empty on purpose,
because ``specbench.harness.prompts`` imports ``specbench.rundir.layout`` and an eager
import of the runner here would make that a cycle.
"""
