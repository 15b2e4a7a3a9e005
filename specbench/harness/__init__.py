"""The measurement harness: engines behind one adapter contract, servers, load, metrics.

``engine`` is the adapter contract, ``sglang``, ``vllm`` and ``sim_adapter`` (the
in-process simulator) its implementations, and ``engines`` the registry that resolves
``--backend`` to one; ``server_backend`` launches or attaches to an engine's servers,
``sim_backend``/``sim_engine`` simulate one in process; ``loadgen`` drives a closed-loop
load and ``metrics`` turns request records into trial metrics. Import from the modules.
"""
