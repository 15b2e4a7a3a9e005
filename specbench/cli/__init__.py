"""The ``specbench`` command: a thin click group over one module per command.

Subcommands are imported lazily so that ``specbench gate`` in a CI job does not pay for
importing torch or matplotlib. Every error a user can cause becomes one line on stderr
and an exit code (0 ok, 1 regression or failed run, 2 bad input); a traceback is shown
only with SPECBENCH_DEBUG=1.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from specbench import __version__
from specbench.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, SpecbenchError

#: command name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "probe": "specbench.cli.probe:probe",
    "predict": "specbench.cli.predict:predict",
    "serve-sim": "specbench.cli.serve_sim:serve_sim",
    "sweep": "specbench.cli.sweep:sweep",
    "report": "specbench.cli.report:report",
    "gate": "specbench.cli.gate:gate",
}

_HELP = {
    "probe": "Measure the interconnect: NVML inventory, P2P matrix, all-reduce curves.",
    "predict": "Predict tau and speedup for every configuration from the performance model.",
    "serve-sim": "Serve SGLang's native API backed by the performance model (no GPU needed).",
    "sweep": "Measure tau and speedup across configurations and concurrencies.",
    "report": "Render the HTML (or Markdown) report of a run directory.",
    "gate": "CI regression gate on tau and speedup between two runs.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help must not import every command module (torch, matplotlib) just to list them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _HELP[name]) for name in COMMANDS])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="specbench")
def cli() -> None:
    """Speculative decoding, measured on your hardware."""


def error_line(message: str) -> None:
    """Print one error line to stderr; the CLI's only way of reporting a failure."""
    click.echo(f"specbench: error: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and map every failure to one line and an exit code."""
    debug = os.environ.get("SPECBENCH_DEBUG") == "1"
    try:
        code: Any = cli.main(args=argv, prog_name="specbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        error_line("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # Usage errors: one line, no usage dump; `--help` shows the usage.
        error_line(exc.format_message().replace("\n", " "))
        sys.exit(exc.exit_code if exc.exit_code else EXIT_BAD_INPUT)
    except SpecbenchError as exc:
        if debug:
            raise
        error_line(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except Exception as exc:
        if debug:
            raise
        error_line(
            f"internal error: {type(exc).__name__}: {exc} (SPECBENCH_DEBUG=1 shows the traceback)"
        )
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)
