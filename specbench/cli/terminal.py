"""Terminal manners shared by the commands: a status line from the first second, tables
that fit the terminal, and a plain hint when they cannot.

Rich squeezes a table that is wider than the terminal by cutting cells to "baseli…";
folding keeps every character, and when even a folded table would be cramped the user is
told how many columns it wants and what to do instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

#: A width no terminal has, to measure a table's natural width.
_UNBOUNDED = 100_000


@contextlib.contextmanager
def startup_status(console: Console, text: str) -> Iterator[Callable[[str], None]]:
    """A spinner with ``text`` while slow start-up work runs (imports, loading runs).

    Yields a function that replaces the text as the work moves on. On a terminal that
    is not interactive (CI logs, a pipe) nothing is drawn: a spinner's frames would
    only litter the log.
    """
    if not console.is_terminal:
        yield lambda _text: None
        return
    with console.status(text, spinner="dots") as status:
        yield lambda new_text: status.update(new_text)


def fold_columns(table: Table) -> Table:
    """Let every cell and header wrap onto more lines instead of ending in "…"."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    return table


def table_width(console: Console, table: Table) -> int:
    """The narrowest ``table`` gets without breaking a word (headers may wrap between
    words), measured unclamped: rich clamps a measurement to the terminal's width."""
    unbounded = console.options.update(width=_UNBOUNDED, max_width=_UNBOUNDED)
    return Measurement.get(console, unbounded, table).minimum


def narrow_terminal_hint(console: Console, table: Table, alternative: str) -> str | None:
    """A one-line hint when ``table`` cannot fit the terminal without breaking words
    ("1.8" over "9x"), else None.

    ``alternative`` names the other way to get the same numbers (e.g. "--json").
    """
    wanted = table_width(console, table)
    if wanted <= console.width:
        return None
    return (
        f"(the table wants {wanted} columns, the terminal has {console.width}: widen it, "
        f"set COLUMNS={wanted}, or use {alternative})"
    )


def print_table(console: Console, table: Table, alternative: str) -> None:
    """Print ``table`` folded to fit, followed by the narrow-terminal hint if needed."""
    hint = narrow_terminal_hint(console, table, alternative)
    console.print(fold_columns(table))
    if hint is not None:
        console.print(hint, style="dim", highlight=False)


__all__ = [
    "fold_columns",
    "narrow_terminal_hint",
    "print_table",
    "startup_status",
    "table_width",
]
