"""Options shown in named sections of a command's ``--help`` (click has none of its own).

A command with forty options read as one block hides the three a user came for. A
:class:`SectionedCommand` is an ordinary click command that takes ``sections``: titled
lists of its Python parameter names, in the order the help shows them. Only the help
changes; parsing, defaults and errors stay click's. A section naming a parameter the
command lacks is a programming error raised when the command is built, so a renamed
option cannot silently drop out of the help; options in no section (``-h``) come last
under "Other options".

This module imports only click: it sits on the ``COMMAND -h`` path, which must stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

#: (section title, parameter names) in help order.
Sections = Sequence[tuple[str, Sequence[str]]]

OTHER_TITLE = "Other options"


class SectionedCommand(click.Command):
    """A click command whose options are listed in named sections in ``--help``."""

    def __init__(self, *args: Any, sections: Sections = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sections: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (title, tuple(names)) for title, names in sections
        )
        declared = {p.name for p in self.params}
        placed: list[str] = [name for _, names in self.sections for name in names]
        unknown = sorted(set(placed) - declared)
        if unknown:
            raise ValueError(f"{self.name}: help sections name unknown options {unknown}")
        repeated = sorted({n for n in placed if placed.count(n) > 1})
        if repeated:
            raise ValueError(f"{self.name}: options in more than one help section {repeated}")

    def unsectioned(self, ctx: click.Context) -> list[str]:
        """Names of the options shown under "Other options" (help itself, or a new option
        nobody placed yet; tests hold a command's list to what it should be)."""
        placed = {name for _, names in self.sections for name in names}
        return [
            str(p.name)
            for p in self.get_params(ctx)
            if isinstance(p, click.Option) and p.name not in placed
        ]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records: dict[str, tuple[str, str]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.name is not None:
                records[param.name] = record
        for title, names in self.sections:
            rows = [records[name] for name in names if name in records]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [records[name] for name in self.unsectioned(ctx) if name in records]
        if rest:
            with formatter.section(OTHER_TITLE if self.sections else "Options"):
                formatter.write_dl(rest)


__all__ = ["OTHER_TITLE", "SectionedCommand", "Sections"]
