"""The engines specbench can launch, by the name the manifest stores.

A new engine is one module with an ``EngineAdapter`` subclass and one line here.
"""

from __future__ import annotations

from specbench.errors import BadInputError
from specbench.harness.engine import EngineAdapter
from specbench.harness.sglang import SGLANG
from specbench.harness.vllm import VLLM

ENGINES: dict[str, EngineAdapter] = {SGLANG.name: SGLANG, VLLM.name: VLLM}
#: The engine the simulator imitates: a simulated run prints that engine's launch lines.
SIMULATED_ENGINE = SGLANG


def get_engine(name: str) -> EngineAdapter:
    """The adapter of ``name``; BadInputError naming the known ones otherwise."""
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise BadInputError(f"unknown engine {name!r} (expected {known})") from None


def engine_of_backend(backend: str) -> EngineAdapter:
    """The engine whose launch line a run of ``backend`` should print (sim: SGLang's)."""
    return ENGINES.get(backend, SIMULATED_ENGINE)


__all__ = ["ENGINES", "SIMULATED_ENGINE", "engine_of_backend", "get_engine"]
