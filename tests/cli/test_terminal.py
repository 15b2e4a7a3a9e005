"""Tables that fit the terminal, or say how to see them whole."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from specbench.cli.terminal import narrow_terminal_hint, print_table, startup_status


def _console(width: int, terminal: bool = False) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)


def _wide_table() -> Table:
    table = Table()
    for name in ("steps", "topk", "draft tokens", "baseline ms", "baseline tok/s", "speedup"):
        table.add_column(name, justify="right")
    table.add_row("4", "4", "7", "7.98", "125", "1.89x")
    return table


def test_a_table_that_fits_gets_no_hint() -> None:
    assert narrow_terminal_hint(_console(200), _wide_table(), "--json") is None


def test_a_narrow_terminal_folds_headers_instead_of_cutting_them_and_says_so() -> None:
    console = _console(40)
    print_table(console, _wide_table(), "--json")
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in out
    assert "125" in out and "9x" in out
    flat = " ".join(out.split())
    assert "use --json)" in flat
    assert "the table wants" in flat and "the terminal has 40" in flat


def test_startup_status_is_silent_off_a_terminal_and_updatable() -> None:
    console = _console(80)
    with startup_status(console, "loading") as update:
        update("still loading")
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]


def test_predict_tables_fit_80_columns_without_cutting_a_header() -> None:
    from click.testing import CliRunner

    from specbench.cli.predict import predict

    result = CliRunner(env={"COLUMNS": "80"}).invoke(predict, ["--concurrency", "1", "--top", "2"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    # Every line but a launch line (one line, to paste whole) within the 80 columns.
    prose = [
        line for line in result.output.splitlines() if not line.lstrip().startswith("python -m")
    ]
    assert max(len(line) for line in prose) <= 80
    assert any(line.lstrip().startswith("python -m sglang") for line in result.output.splitlines())
    assert "widen it" not in result.output
