"""The sweep's options about how loads are measured and servers launched and checked.

Kept as one decorator so the ``sweep`` command gains them in one line; each option's
destination is the ``SweepOptions`` field of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from specbench.cli import options
from specbench.cli.options import DEFAULT_REPEATS
from specbench.sweeps.budget import DEFAULT_LAUNCH_TIME_S

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        show_default=True,
        help="Measure a load again this many times while it is flagged noisy (a stall: "
        "TTFT tail, slow connections, gaps between chunks; or a wide spread).",
    ),
    click.option(
        "--prune/--no-prune",
        default=None,
        help="Stop measuring a configuration's higher concurrencies once its first load's "
        "95% interval is clearly below the best one's (default: on when launching servers).",
    ),
    click.option(
        "--stop-when-settled/--no-stop-when-settled",
        default=None,
        help="Refit the model to every measured trial, measure what the refit proposes and "
        "stop once no unmeasured configuration can beat the best measured by more than the "
        "noise (default: on when launching servers with the model-guided search).",
    ),
    click.option(
        "--no-config-check",
        is_flag=True,
        help="Do not compare each launched server's /server_info (algorithm, draft, tree, "
        "batch limits) with what was asked for; the skip is recorded in the run.",
    ),
    options.HOST(
        default="127.0.0.1",
        use="Launched servers listen on it and are reached there (a node name when "
        "--launch-cmd runs them on another node).",
        default_text="127.0.0.1",
    ),
    click.option(
        "--launch-time-estimate",
        "launch_time_estimate_s",
        type=float,
        default=DEFAULT_LAUNCH_TIME_S,
        show_default=True,
        help="Seconds one server launch takes, for the wall-time estimate printed before "
        "a launch-mode sweep (updated from the baseline's real launch).",
    ),
)


def measure_options(func: F) -> F:
    """Add the measurement options to a click command."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


__all__ = ["measure_options"]
