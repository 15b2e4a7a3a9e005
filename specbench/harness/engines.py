"""The engines specbench can run, by the name the manifest stores: the one registry.

``create`` turns ``--backend``'s value (or a ready adapter) into the engine object the
sweep and the report hold; nothing else looks an engine up by name. Built-in engines
are named here with the module that defines them and imported on first use, so the
CLI can list them (``sweep --backend``'s choices) without importing any engine. A new
engine is one module with an ``EngineAdapter`` subclass and one line in ``BUILT_IN``;
a program or a test adds its own with ``register``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from specbench.errors import BadInputError

if TYPE_CHECKING:
    from specbench.harness.engine import EngineAdapter

#: name -> "module:attribute" of each built-in engine's adapter instance.
BUILT_IN: dict[str, str] = {
    "sim": "specbench.harness.sim_adapter:SIM",
    "sglang": "specbench.harness.sglang:SGLANG",
    "vllm": "specbench.harness.vllm:VLLM",
}
#: ``--backend auto``: the first of these the machine can run (``available``), or the
#: first at all when attaching to an endpoint (a running server needs no local engine).
AUTO = "auto"
AUTO_CANDIDATES: tuple[str, ...] = ("sglang",)
#: What auto falls back to when no candidate is available.
AUTO_FALLBACK = "sim"
#: The engine whose launch lines a run of an unknown engine prints (an old run
#: directory, or one written by an engine this installation lacks): the simulator
#: imitates it.
DEFAULT_LAUNCH_ENGINE = "sglang"

_registered: dict[str, EngineAdapter] = {}


def register(engine: EngineAdapter, *, replace: bool = False) -> EngineAdapter:
    """Add ``engine`` under its ``name`` (returned, so a module can register its
    instance where it defines it). A name already taken is refused unless ``replace``."""
    if not replace and (engine.name in _registered or engine.name in BUILT_IN):
        raise ValueError(f"an engine named {engine.name!r} is already registered")
    _registered[engine.name] = engine
    return engine


def unregister(name: str) -> None:
    """Forget a registered engine (tests that add one take it away again)."""
    _registered.pop(name, None)


def engine_names() -> tuple[str, ...]:
    """Every engine's name, built-in first; imports none of them."""
    return (*BUILT_IN, *(name for name in _registered if name not in BUILT_IN))


def backend_choices() -> tuple[str, ...]:
    """What ``--backend`` accepts: auto, then every engine."""
    return (AUTO, *engine_names())


def create(engine: str | EngineAdapter) -> EngineAdapter:
    """The engine ``engine`` names, or ``engine`` itself when it is one already;
    BadInputError naming the known ones otherwise."""
    if not isinstance(engine, str):
        return engine
    if engine in _registered:
        return _registered[engine]
    if engine in BUILT_IN:
        module, attribute = BUILT_IN[engine].split(":")
        adapter: EngineAdapter = getattr(importlib.import_module(module), attribute)
        return adapter
    known = ", ".join(sorted(engine_names()))
    raise BadInputError(f"unknown engine {engine!r} (expected {known})")


def auto_engine(*, attaching: bool) -> EngineAdapter:
    """What ``--backend auto`` runs: the first candidate engine when attaching to a
    server or when this machine can run it, else the fallback (the simulator)."""
    for name in AUTO_CANDIDATES:
        candidate = create(name)
        if attaching or candidate.available():
            return candidate
    return create(AUTO_FALLBACK)


def launch_engine_of(name: str) -> EngineAdapter:
    """The engine whose launch lines a run recorded under ``name`` prints: its own, or
    SGLang's for a name this installation does not know."""
    try:
        return create(name)
    except BadInputError:
        return create(DEFAULT_LAUNCH_ENGINE)


def get_engine(name: str) -> EngineAdapter:
    """The adapter of ``name`` (``create`` for a name)."""
    return create(name)


__all__ = [
    "AUTO",
    "AUTO_CANDIDATES",
    "AUTO_FALLBACK",
    "BUILT_IN",
    "DEFAULT_LAUNCH_ENGINE",
    "auto_engine",
    "backend_choices",
    "create",
    "engine_names",
    "get_engine",
    "launch_engine_of",
    "register",
    "unregister",
]
