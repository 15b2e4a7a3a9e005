"""Walk every command's help and fail on what a user would trip over.

Rules, checked by click introspection (no help text is hard-coded here):
- every visible option has a description;
- an option name means one thing: the same flags and metavar in every command, and the
  same definition (a registered shared option's sentence, else the same first sentence);
- every command's help ends with the exit codes;
- no command's one-line summary in a listing is cut off ("...");
- no help text mentions an option that is hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
from click.testing import CliRunner

from specbench.cli import COMMANDS, SUMMARIES, cli
from specbench.cli.options import EXIT_CODES, SHARED, SharedOption

Walked = tuple[str, click.Command, click.Context]


def walk(
    command: click.Command, name: str = "specbench", parent: click.Context | None = None
) -> Iterator[Walked]:
    """Every command and subcommand with the context its help is rendered in."""
    ctx = click.Context(command, info_name=name, parent=parent)
    yield ctx.command_path, command, ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            assert sub is not None, f"{ctx.command_path} lists {sub_name!r} but cannot load it"
            yield from walk(sub, sub_name, ctx)


def _options(command: click.Command, ctx: click.Context) -> Iterator[click.Option]:
    help_names = set(ctx.help_option_names)
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not help_names.intersection(param.opts):
            yield param


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


def _declaration(option: click.Option, ctx: click.Context) -> str:
    record = option.get_help_record(ctx)
    return record[0] if record else ""


def help_problems(walked: list[Walked], shared: dict[str, SharedOption] | None = None) -> list[str]:
    """Every rule broken, one line each (empty when the help is consistent)."""
    shared = SHARED if shared is None else shared
    problems: list[str] = []
    seen: dict[str, tuple[str, str, str]] = {}  # flag -> (command, declaration, definition)
    for path, command, ctx in walked:
        text = command.get_help(ctx)
        if EXIT_CODES not in " ".join(text.split()):
            problems.append(f"{path}: help does not end with the exit codes")
        hidden = [o for o in command.params if isinstance(o, click.Option) and o.hidden]
        for option in hidden:
            for flag in option.opts:
                if re.search(rf"{re.escape(flag)}\b", text):
                    problems.append(f"{path}: help mentions the hidden option {flag}")
        if isinstance(command, click.Group):
            _, _, listing = text.partition("Commands:")
            for line in listing.splitlines():
                if line.rstrip().endswith("..."):
                    name = line.split()[0]
                    problems.append(f"{path} {name}: summary in the command list is cut off")
        for option in _options(command, ctx):
            if option.hidden:
                continue
            flag = max(option.opts, key=len)
            if not (option.help or "").strip():
                problems.append(f"{path} {flag}: no description")
                continue
            declaration = _declaration(option, ctx)
            definition = _first_sentence(option.help or "")
            if flag in shared and not (option.help or "").startswith(shared[flag].help):
                problems.append(f"{path} {flag}: does not use the shared definition")
            first = seen.setdefault(flag, (path, declaration, definition))
            if declaration != first[1]:
                problems.append(
                    f"{path} {flag}: shown as {declaration!r}, in {first[0]} as {first[1]!r}"
                )
            if flag not in shared and definition != first[2]:
                problems.append(
                    f"{path} {flag}: described as {definition!r}, in {first[0]} as {first[2]!r}"
                )
    return problems


# ------------------------------------------------------------------ the checker itself
def _demo_group() -> click.Group:
    @click.group("demo")
    def group() -> None:
        """A demo group.

        Exit codes: 0 ok, 1 regression or failed run, 2 bad input, 130 interrupted.
        """

    @group.command("one", epilog=EXIT_CODES)
    @click.option("--hardware", metavar="PROFILE|FILE", help="Hardware profile.")
    @click.option("--seed", type=int, default=0)
    @click.option("--secret", hidden=True, help="Internal.")
    def one(hardware: str, seed: int, secret: str) -> None:
        """Use --secret to cheat."""

    @group.command("two")
    @click.option("--hardware", metavar="PROFILE|PROBE_JSON", help="Hardware profile.")
    @click.option("--target", help="A target preset.")
    def two(hardware: str, target: str) -> None:
        """A summary that goes on and on for so long that no listing could show all of it."""

    @group.command("three", epilog=EXIT_CODES)
    @click.option("--target", help="The model to measure.")
    def three(target: str) -> None:
        """Three."""

    return group


def test_the_checker_catches_every_kind_of_inconsistency() -> None:
    problems = help_problems(list(walk(_demo_group(), "demo")), shared={})
    assert sorted(problems) == sorted(
        [
            "demo one --seed: no description",
            "demo one: help mentions the hidden option --secret",
            "demo two: help does not end with the exit codes",
            "demo two --hardware: shown as '--hardware PROFILE|PROBE_JSON', "
            "in demo one as '--hardware PROFILE|FILE'",
            "demo two --target: described as 'A target preset.', "
            "in demo three as 'The model to measure.'",
            "demo two: summary in the command list is cut off",
        ]
    )


def test_the_checker_holds_registered_options_to_their_definition() -> None:
    registered = {"--target": SharedOption("--target", "Target model preset.")}
    problems = help_problems(list(walk(_demo_group(), "demo")), shared=registered)
    assert "demo two --target: does not use the shared definition" in problems
    assert not any("described as" in p for p in problems)


# ------------------------------------------------------------------ the real command line
def test_every_command_documents_every_option_consistently() -> None:
    walked = list(walk(cli))
    assert {path for path, _, _ in walked} >= {f"specbench {name}" for name in COMMANDS}
    assert help_problems(walked) == []


def test_the_command_list_shows_each_commands_own_summary() -> None:
    ctx = click.Context(cli, info_name="specbench")
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.get_short_help_str(limit=200) == SUMMARIES[name]


def test_specbench_alone_lists_the_commands_and_succeeds() -> None:
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 0
    assert "Commands:" in result.output and "sweep" in result.output
    assert EXIT_CODES in " ".join(result.output.split())
