"""What a run directory's results become outside specbench: engine configuration files.

Reads a run directory (never writes a trial), like the report and the gate.
"""
