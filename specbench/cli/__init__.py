"""The ``specbench`` command: a thin click group over one module per command.

Subcommands are imported lazily so that ``specbench gate`` in a CI job does not pay for
importing torch or matplotlib. Every error a user can cause becomes one line on stderr
and an exit code (0 ok, 1 regression or failed run, 2 bad input); a traceback is shown
only with SPECBENCH_DEBUG=1.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from specbench import __version__
from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, SpecbenchError
from specbench.outpaths import os_error_reason
from specbench.safe_text import printable

#: command name -> "module:attribute" of a click command. The one-line summaries below are
#: each command's own first docstring line (tests/cli/test_cli_help.py holds them equal),
#: repeated here so that listing the commands imports none of them.
COMMANDS: dict[str, str] = {
    "probe": "specbench.cli.probe:probe",
    "predict": "specbench.cli.predict:predict",
    "serve-sim": "specbench.cli.serve_sim:serve_sim",
    "sweep": "specbench.cli.sweep:sweep",
    "report": "specbench.cli.report:report",
    "gate": "specbench.cli.gate:gate",
    "calibrate": "specbench.cli.calibrate:calibrate",
    "export": "specbench.cli.export:export",
}

SUMMARIES = {
    "probe": "Measure the interconnect: NVML, P2P and all-reduce curves.",
    "predict": "Predict tau and speedup of every configuration (model, no GPU).",
    "serve-sim": "Serve SGLang's API backed by the model (no GPU needed).",
    "sweep": "Measure tau and speedup over configurations and concurrencies.",
    "report": "Render the report of a run directory, or several runs side by side.",
    "gate": "CI regression gate on tau and speedup between two runs.",
    "calibrate": "Fit the acceptance model to RUN_DIR's per-position acceptance.",
    "export": "Write a run's per-load results as an engine's adaptive speculation config.",
}


@contextlib.contextmanager
def _loading(cmd_name: str) -> Iterator[None]:
    """A spinner on an interactive stderr while a command's libraries load (torch,
    pandas, optuna: seconds on a cold disk), so the first second is not silent. Not
    during shell completion, where it would draw over the prompt."""
    if "_SPECBENCH_COMPLETE" in os.environ:
        yield
        return
    from rich.console import Console

    from specbench.cli.terminal import startup_status

    with startup_status(Console(stderr=True), f"loading specbench {cmd_name}"):
        yield


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            close = difflib.get_close_matches(cmd_name, list(COMMANDS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "`specbench` lists the commands"
            raise click.UsageError(f"no such command '{cmd_name}': {hint}", ctx)
        module_name, attr = target.split(":")
        with _loading(cmd_name):
            module = importlib.import_module(module_name)
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help must not import every command module (torch, matplotlib) just to list them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in COMMANDS])


@click.group(
    cls=LazyGroup,
    context_settings=CONTEXT_SETTINGS,
    invoke_without_command=True,
    epilog=f"Run `specbench COMMAND -h` for a command's options. {EXIT_CODES}",
)
@click.version_option(__version__, prog_name="specbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Speculative decoding, measured on your hardware."""
    # `specbench` alone is a question ("what can it do?"), not a mistake: answer it.
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


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
    except click.UsageError as exc:
        # Usage errors: one line, no usage dump, and where the options are described.
        message = exc.format_message().replace("\n", " ")
        if not message.startswith("no such command"):
            where = exc.ctx.command_path if exc.ctx is not None else "specbench"
            message += f" (`{where} -h` shows the options)"
        error_line(message)
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as exc:
        error_line(exc.format_message().replace("\n", " "))
        sys.exit(exc.exit_code if exc.exit_code else EXIT_BAD_INPUT)
    except SpecbenchError as exc:
        if debug:
            raise
        error_line(printable(str(exc), 2000))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) and not debug:
            error_line(disk_full_line(exc))
            sys.exit(EXIT_FAILURE)
        # A file the user named that the OS refuses (read-only, forbidden) is the
        # user's to fix; an OSError without a file name is not known to be.
        if debug or exc.filename is None:
            raise_internal(exc, debug)
        error_line(f"{printable(str(exc.filename))}: {os_error_reason(exc)}")
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:
        raise_internal(exc, debug)
    sys.exit(code if isinstance(code, int) else 0)


def disk_full_line(exc: OSError) -> str:
    """A full disk or quota, said as such: the run failed (exit 1), nothing is corrupt.

    Every file is written whole or not at all (atomic JSON, appends cut back on error),
    so freeing space and running the same command resumes where it stopped.
    """
    where = f" writing {printable(str(exc.filename))}" if exc.filename is not None else ""
    return (
        f"{os_error_reason(exc)}{where}; every file written so far is whole: free some "
        "space and run the same command again (a sweep resumes where it stopped)"
    )


def raise_internal(exc: Exception, debug: bool) -> NoReturn:
    """An unexpected failure: the traceback with SPECBENCH_DEBUG=1, else one line.

    The exception text may quote what a server sent, so it is made terminal-safe.
    """
    if debug:
        raise exc
    error_line(
        f"internal error: {type(exc).__name__}: {printable(str(exc), 300)} "
        "(SPECBENCH_DEBUG=1 shows the traceback)"
    )
    sys.exit(EXIT_FAILURE)
