"""One definition per command-line option that more than one command accepts.

A user who learns ``--hardware`` in ``predict`` should meet the same spelling, metavar
and meaning in ``sweep`` and ``serve-sim``. Each shared option is declared once here as a
:class:`SharedOption`; a command applies it as a decorator and supplies only what is
really its own: the default, an optional sentence on what the value does in that
command, and the Python parameter name. ``tests/cli/test_help.py`` walks every command's
help and fails when two commands describe the same option differently, so an option
added inline in one command and then copied into another is caught.

To add a shared option: declare a ``SharedOption`` constant below (flag, metavar, the
definition sentence) and apply it in each command, e.g.::

    @options.REQUEST_TIMEOUT(default=600.0, use="Per request, streaming included.")

This module imports only click, so ``specbench --help`` and shell completion stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

#: Printed at the end of every command's ``--help`` (the same codes as specbench.errors).
EXIT_CODES = "Exit codes: 0 ok, 1 regression or failed run, 2 bad input, 130 interrupted."

#: click context settings for every command: ``-h`` works, and every option's default
#: is shown in its help line (an option whose default is None shows nothing, or the text
#: its definition passes as ``default_text``).
CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "show_default": True,
    "max_content_width": 100,
}


@dataclass(frozen=True)
class SharedOption:
    """An option's public face: flag, metavar, value type and the definition sentence.

    ``help`` says what the value *is* and is identical in every command; a command may
    append one ``use`` sentence saying what the value does there.
    """

    flag: str
    help: str
    metavar: str | None = None
    type: Any = None
    multiple: bool = False
    is_flag: bool = False

    def __call__(
        self,
        *,
        default: Any = None,
        use: str = "",
        param: str | None = None,
        default_text: str | None = None,
    ) -> Callable[[F], F]:
        """The click decorator for one command.

        ``param`` names the Python parameter when it differs from the flag (``--json``
        -> ``as_json``); ``default_text`` is shown as the default when the real default
        is None because the value is resolved later (e.g. "the preset's").
        """
        decls = [self.flag] if param is None else [self.flag, param]
        text = self.help if not use else f"{self.help} {use}"
        kwargs: dict[str, Any] = {"help": text, "multiple": self.multiple}
        if self.is_flag:
            kwargs["is_flag"] = True
            return click.option(*decls, **kwargs)
        kwargs["default"] = default
        kwargs["metavar"] = self.metavar
        if self.type is not None:
            kwargs["type"] = self.type
        if default_text is not None:
            kwargs["show_default"] = default_text
        return click.option(*decls, **kwargs)


# --------------------------------------------------------------------- what is measured
TARGET = SharedOption(
    "--target",
    "Target model preset (see `specbench predict --list`) or a preset TOML file.",
    metavar="NAME|TOML",
)
HARDWARE = SharedOption(
    "--hardware",
    "Hardware profile (see `specbench predict --list`) or a `specbench probe --out` JSON.",
    metavar="PROFILE|PROBE_JSON",
)
TP = SharedOption(
    "--tp",
    "Tensor-parallel size of the target.",
    metavar="N",
    type=int,
)
CONFIG = SharedOption(
    "--config",
    "A speculative configuration as num-steps,topk,num-draft-tokens, e.g. 3,4,8 (repeatable).",
    metavar="STEPS,TOPK,DRAFT",
    multiple=True,
)
CONCURRENCY = SharedOption(
    "--concurrency",
    "Numbers of concurrent requests, comma-separated, e.g. 1,8,32.",
    metavar="N[,N...]",
)
SEED = SharedOption(
    "--seed",
    "Random seed, so that a rerun draws the same numbers.",
    metavar="INT",
    type=int,
)

# ------------------------------------------------------------------------ where it goes
JSON = SharedOption(
    "--json",
    "Print the result as JSON on stdout (progress and notes stay on stderr).",
    is_flag=True,
)
OUT = SharedOption(
    "--out",
    "Where to write the result.",
    metavar="PATH",
)
HOST = SharedOption(
    "--host",
    "Address a server listens on.",
    metavar="HOST",
)
PORT = SharedOption(
    "--port",
    "TCP port a server listens on.",
    metavar="PORT",
    type=int,
)

# -------------------------------------------------------------------------- gate limits
THRESHOLD_HELP = "A percentage (3%) or a fraction (0.03)."


def threshold(flag: str, what: str) -> SharedOption:
    """A tolerated drop (``--max-tau-drop 3%``): every threshold reads and shows alike."""
    return SharedOption(flag, f"Tolerated drop of {what}. {THRESHOLD_HELP}", metavar="PCT")


MAX_TAU_DROP = threshold("--max-tau-drop", "median tau")
MAX_SPEEDUP_DROP = threshold("--max-speedup-drop", "the aggregate speedup")
MAX_TOKENS_PER_S_DROP = threshold("--max-tokens-per-s-drop", "median per-request tokens/s")

#: Every shared option by flag, for the help test and for anyone extending this module.
SHARED: dict[str, SharedOption] = {
    o.flag: o
    for o in (
        TARGET,
        HARDWARE,
        TP,
        CONFIG,
        CONCURRENCY,
        SEED,
        JSON,
        OUT,
        HOST,
        PORT,
        MAX_TAU_DROP,
        MAX_SPEEDUP_DROP,
        MAX_TOKENS_PER_S_DROP,
    )
}

__all__ = [
    "CONCURRENCY",
    "CONFIG",
    "CONTEXT_SETTINGS",
    "EXIT_CODES",
    "HARDWARE",
    "HOST",
    "JSON",
    "MAX_SPEEDUP_DROP",
    "MAX_TAU_DROP",
    "MAX_TOKENS_PER_S_DROP",
    "OUT",
    "PORT",
    "SEED",
    "SHARED",
    "TARGET",
    "TP",
    "SharedOption",
    "threshold",
]
