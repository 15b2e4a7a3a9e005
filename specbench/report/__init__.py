"""The run report: read a run directory, compute plain data, draw it as HTML or Markdown.

``data`` turns a run directory into plain tables (optuna's visualization style: compute,
then draw), ``plots`` draws the figures, ``html`` and ``markdown`` are one output module
per format. Nothing here writes a trial.
"""
