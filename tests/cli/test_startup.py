"""`specbench COMMAND -h` must not import the heavy libraries (checked by sys.modules)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from specbench.cli import cli
from specbench.cli.option_sections import SectionedCommand
from specbench.cli.sweep import SECTIONS

HEAVY = ("optuna", "pandas", "matplotlib", "scipy", "torch", "numpy", "aiohttp", "jinja2")

_PROBE = """
import json, sys
import click
from specbench.cli import COMMANDS, cli
ctx = click.Context(cli, info_name="specbench")
for name in COMMANDS:
    command = cli.get_command(ctx, name)
    command.get_help(click.Context(command, info_name=name, parent=ctx))
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""


def test_every_command_help_imports_no_heavy_library() -> None:
    code = _PROBE.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_every_sweep_option_is_in_a_named_section() -> None:
    import click

    ctx = click.Context(cli)
    sweep = cli.get_command(ctx, "sweep")
    assert isinstance(sweep, SectionedCommand)
    sweep_ctx = click.Context(sweep)
    help_option = sweep.get_help_option(sweep_ctx)
    assert help_option is not None
    assert sweep.unsectioned(sweep_ctx) == [help_option.name]
    text = sweep.get_help(click.Context(sweep, info_name="sweep"))
    positions = [text.index(f"\n{title}:\n") for title, _ in SECTIONS]
    assert positions == sorted(positions)
    assert "Other options:" in text


def test_a_section_naming_an_unknown_or_repeated_option_is_refused() -> None:
    import click

    with pytest.raises(ValueError, match="unknown options"):
        SectionedCommand("c", params=[click.Option(["--a"])], sections=[("A", ["b"])])
    with pytest.raises(ValueError, match="more than one"):
        SectionedCommand("c", params=[click.Option(["--a"])], sections=[("A", ["a"]), ("B", ["a"])])
