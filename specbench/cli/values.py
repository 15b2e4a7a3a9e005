"""Parsers of option values shared by several commands.

One parser per kind of value, so ``specbench sweep --concurrency 1,8`` and ``specbench gate
--concurrency 1,8`` accept and reject exactly the same text with the same message.
"""

from __future__ import annotations

from specbench.errors import BadInputError


def parse_concurrency_list(text: str, *, option: str = "--concurrency") -> list[int]:
    """``"1,8,32"`` -> [1, 8, 32] in the order given; every value a positive integer."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise BadInputError(f"{option}: {part!r} is not a positive integer (e.g. 1,8,32)")
        out.append(int(part))
    if not out:
        raise BadInputError(f"{option} needs at least one value (e.g. 1,8,32)")
    return out
