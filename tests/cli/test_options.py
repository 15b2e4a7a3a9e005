"""The shared option definitions: one flag, metavar and definition sentence everywhere."""

from __future__ import annotations

import click
from click.testing import CliRunner

from specbench.cli import options


def _command(*decorators: object) -> click.Command:
    def body(**kwargs: object) -> None:
        click.echo(repr(sorted(kwargs.items())))

    fn = body
    for decorator in reversed(decorators):
        fn = decorator(fn)  # type: ignore[operator]
    return click.command("demo", context_settings=options.CONTEXT_SETTINGS)(fn)


def test_a_shared_option_keeps_its_definition_and_appends_the_command_use() -> None:
    cmd = _command(options.TARGET(default="minimax-m2.7", use="The model to sweep."))
    (param,) = cmd.params
    assert isinstance(param, click.Option)
    assert param.opts == ["--target"]
    assert param.metavar == "NAME|TOML|DIR"
    assert param.help is not None
    assert param.help.startswith(options.TARGET.help)
    assert param.help.endswith("The model to sweep.")


def test_defaults_are_shown_and_a_resolved_later_default_shows_its_text() -> None:
    cmd = _command(
        options.TARGET(default="minimax-m2.7"),
        options.TP(default_text="the preset's"),
    )
    out = " ".join(CliRunner().invoke(cmd, ["--help"]).output.split())
    assert "[default: minimax-m2.7]" in out
    assert "[default: (the preset's)]" in out
    assert "NAME|TOML|DIR" in out


def test_param_renames_the_python_argument_and_types_convert() -> None:
    cmd = _command(
        options.JSON(param="as_json"),
        options.SEED(default=0),
        options.CONFIG(param="configs"),
    )
    result = CliRunner().invoke(cmd, ["--json", "--seed", "7", "--config", "3,4,8"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "[('as_json', True), ('configs', ('3,4,8',)), ('seed', 7)]"


def test_a_bad_typed_value_is_refused_by_click() -> None:
    cmd = _command(options.SEED(default=0))
    result = CliRunner().invoke(cmd, ["--seed", "x"])
    assert result.exit_code == 2
    assert "'x' is not a valid integer" in result.output


def test_every_threshold_reads_alike() -> None:
    thresholds = [options.MAX_TAU_DROP, options.MAX_SPEEDUP_DROP, options.MAX_TOKENS_PER_S_DROP]
    assert {t.metavar for t in thresholds} == {"PCT"}
    assert all(t.help.endswith(options.THRESHOLD_HELP) for t in thresholds)


def test_the_registry_lists_every_shared_option_once() -> None:
    declared = [v for v in vars(options).values() if isinstance(v, options.SharedOption)]
    assert sorted(o.flag for o in declared) == sorted(options.SHARED)
    assert all(o.help.endswith(".") for o in declared)


def test_the_defaults_shown_in_help_are_the_libraries_defaults() -> None:
    from specbench.model import DEFAULT_SIM_PROFILE
    from specbench.sweeps import options as sweep_options

    assert options.DEFAULT_TARGET == sweep_options.DEFAULT_TARGET
    assert options.DEFAULT_NUM_PROMPTS == sweep_options.DEFAULT_NUM_PROMPTS
    assert options.DEFAULT_MAX_NEW_TOKENS == sweep_options.DEFAULT_MAX_NEW_TOKENS
    assert options.DEFAULT_HARDWARE == DEFAULT_SIM_PROFILE
    assert options.DEFAULT_CONCURRENCIES == sweep_options.DEFAULT_CONCURRENCIES
    assert options.DEFAULT_REQUEST_TIMEOUT_S == sweep_options.DEFAULT_REQUEST_TIMEOUT_S
    assert options.DEFAULT_REPEATS == sweep_options.DEFAULT_REPEATS

    from specbench.cli.next_steps import POOR_FIT_R2_TEXT
    from specbench.cli.report import FORMATS
    from specbench.harness.server_backend import DEFAULT_READY_TIMEOUT_S
    from specbench.report import html
    from specbench.topology.fit import POOR_FIT_R2

    assert options.DEFAULT_READY_TIMEOUT_S == DEFAULT_READY_TIMEOUT_S
    assert html.FORMATS == FORMATS
    assert float(POOR_FIT_R2_TEXT) == POOR_FIT_R2


def test_shell_completion_offers_the_shipped_names_then_files() -> None:
    from specbench.model import list_profiles, list_targets

    cmd = _command(options.TARGET(), options.HARDWARE())
    ctx = click.Context(cmd)
    target, hardware = cmd.params
    assert [c.value for c in target.shell_complete(ctx, "")] == list_targets()
    assert [c.value for c in hardware.shell_complete(ctx, "h2")] == [
        p for p in list_profiles() if p.startswith("h2")
    ]
    (fallback,) = hardware.shell_complete(ctx, "probe")
    assert (fallback.value, fallback.type) == ("probe", "file")
