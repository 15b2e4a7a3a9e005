"""The run directory: the contract every stage after the sweep reads.

Layout and manifest (``layout``), per-request records (``records``), one typed trial row
and the one speedup formula (``trials``), and the verdict computed from them
(``verdict``: per-load picks and the three-way verdict of ``recommend``, with intervals
from the rows or, for older runs, from ``intervals``). It imports only the ground modules (errors, schema, spec_config), so the
harness, the sweep, the report and the gate can all depend on it.
"""
