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
from importlib.resources import files
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

F = TypeVar("F", bound=Callable[..., Any])

#: Defaults the help shows. They are repeated here (and held equal to the library's by
#: tests/cli/test_options.py) because importing specbench.model, specbench.sweeps or
#: specbench.harness to read them would cost a second or two on every ``COMMAND -h``
#: and every shell completion.
DEFAULT_TARGET = "minimax-m2.7"
DEFAULT_HARDWARE = "h200-nvlink"
DEFAULT_NUM_PROMPTS = 16
DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_CONCURRENCIES: tuple[int, ...] = (1, 8, 32)
DEFAULT_REQUEST_TIMEOUT_S = 600.0
DEFAULT_READY_TIMEOUT_S = 1800.0
DEFAULT_REPEATS = 1

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


Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def shipped_names(kind: str) -> Completer:
    """Shell completion of a shipped preset name ("targets", "hardware"), falling back
    to file names (a preset TOML or a probe JSON). Reads the data directory, not
    specbench.model, so a tab press does not import torch."""

    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        folder = files("specbench") / "model" / "data" / kind
        names = sorted(
            p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml")
        )
        matches = [CompletionItem(n) for n in names if n.startswith(incomplete)]
        return matches or [CompletionItem(incomplete, type="file")]

    return complete


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
    #: Shell completion of the value (click's), where there is a known set of names.
    complete: Completer | None = None

    def __call__(
        self,
        *,
        default: Any = None,
        use: str = "",
        param: str | None = None,
        default_text: str | None = None,
        multiple: bool | None = None,
        type: Any = None,
        callback: Callable[[click.Context, click.Parameter, Any], Any] | None = None,
    ) -> Callable[[F], F]:
        """The click decorator for one command.

        ``param`` names the Python parameter when it differs from the flag (``--json``
        -> ``as_json``); ``default_text`` is shown as the default when the real default
        is None because the value is resolved later (e.g. "the preset's"); ``multiple``
        lets one command accept the option repeatedly where the values are a filter;
        ``type`` narrows the value type for one command (a file there, a directory here);
        ``callback`` parses the value into what that command's code takes.
        """
        decls = [self.flag] if param is None else [self.flag, param]
        text = self.help if not use else f"{self.help} {use}"
        repeat = self.multiple if multiple is None else multiple
        kwargs: dict[str, Any] = {"help": text, "multiple": repeat}
        if self.is_flag:
            kwargs["is_flag"] = True
            return click.option(*decls, **kwargs)
        kwargs["default"] = default
        kwargs["metavar"] = self.metavar
        value_type = self.type if type is None else type
        if value_type is not None:
            kwargs["type"] = value_type
        if default_text is not None:
            kwargs["show_default"] = default_text
        if self.complete is not None:
            kwargs["shell_complete"] = self.complete
        if callback is not None:
            kwargs["callback"] = callback
        return click.option(*decls, **kwargs)


# --------------------------------------------------------------------- what is measured
TARGET = SharedOption(
    "--target",
    "Target model preset (see `specbench predict --list`), a preset TOML file, or a model "
    "folder / its config.json.",
    metavar="NAME|TOML|DIR",
    complete=shipped_names("targets"),
)
ENGINE = SharedOption(
    "--engine",
    "The serving engine: sglang or vllm.",
    metavar="ENGINE",
)
HARDWARE = SharedOption(
    "--hardware",
    "Hardware profile (see `specbench predict --list`) or a `specbench probe --out` JSON.",
    metavar="PROFILE|PROBE_JSON",
    complete=shipped_names("hardware"),
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
TEMPERATURE = SharedOption(
    "--temperature",
    "Sampling temperature of the requests (0: greedy).",
    metavar="T",
    type=float,
)
DRAFT_PROFILE = SharedOption(
    "--draft-profile",
    "Draft acceptance profile: a shipped name or a file written by calibration.",
    metavar="NAME|FILE",
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
        ENGINE,
        HARDWARE,
        TP,
        CONFIG,
        CONCURRENCY,
        TEMPERATURE,
        DRAFT_PROFILE,
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
    "DEFAULT_CONCURRENCIES",
    "DEFAULT_HARDWARE",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_NUM_PROMPTS",
    "DEFAULT_READY_TIMEOUT_S",
    "DEFAULT_REPEATS",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "DEFAULT_TARGET",
    "DRAFT_PROFILE",
    "ENGINE",
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
    "TEMPERATURE",
    "TP",
    "SharedOption",
    "shipped_names",
    "threshold",
]
