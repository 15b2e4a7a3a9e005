"""serve-sim: an SGLang-compatible HTTP server backed by the performance model.

A separate product from the sweep: it lets the tool (or any SGLang client) be tried
without a GPU. It sits beside ``sweeps`` and imports the harness's simulated engine.
"""
