"""--method: which speculative methods a sweep searches, checked before anything runs.

Each method asked for must be listed by the target preset (its draft known), offered by
the engine and runnable there (the simulator models EAGLE3 only), and searched by a
strategy that replays a list: the model-guided search has no method dimension yet.
"""

from __future__ import annotations

from specbench.errors import BadInputError
from specbench.harness.engine import EngineAdapter
from specbench.model import TargetPreset
from specbench.spec_config import EAGLE3
from specbench.spec_methods import offered_methods
from specbench.sweeps.options import SweepOptions
from specbench.sweeps.space import SearchSpace, method_space
from specbench.sweeps.strategy import search_strategy


def methods_space(
    options: SweepOptions, target: TargetPreset, engine: EngineAdapter, space: SearchSpace
) -> SearchSpace:
    """The space of --method: each method listed by the preset (its draft known), offered
    by the engine and runnable there, searched by a strategy that replays a list (the
    model-guided search has no method dimension yet)."""
    methods = options.methods or ()
    for name in methods:
        if name not in target.method_names:
            raise BadInputError(
                f"--method {name}: the {target.name} preset does not list it among its "
                f"methods (it lists {', '.join(target.method_names)})"
            )
    if methods != (EAGLE3,) and search_strategy(options.strategy).name == "optuna":
        raise BadInputError(
            "--method with another method than eagle3 needs --strategy grid or fixed "
            "(the model-guided search covers eagle3 only)"
        )
    widened = method_space(space, methods, offered_methods(engine.method_catalogue))
    for name in methods:
        first = next(c for c in widened.configs if c.method == name)
        reason = engine.check_config(first)
        if reason is not None:
            raise BadInputError(f"--method {name}: {reason}")
    return widened


__all__ = ["methods_space"]
