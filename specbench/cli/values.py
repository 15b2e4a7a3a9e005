"""Parsers of option values shared by several commands.

One parser per kind of value, so ``specbench sweep --concurrency 1,8`` and ``specbench gate
--concurrency 1,8`` accept and reject exactly the same text with the same message.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from specbench.errors import BadInputError
from specbench.limits import BOUNDS
from specbench.safe_text import printable


def parse_concurrency_list(text: str, *, option: str = "--concurrency") -> list[int]:
    """``"1,8,32"`` -> [1, 8, 32] in the order given; every value a positive integer."""
    bound = BOUNDS["--concurrency"]
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < bound.low:
            raise BadInputError(f"{option}: {part!r} is not a positive integer (e.g. 1,8,32)")
        if int(part) > bound.high:
            raise BadInputError(f"{option}: {part} is above the maximum of {bound.high:g}")
        out.append(int(part))
    if not out:
        raise BadInputError(f"{option} needs at least one value (e.g. 1,8,32)")
    return out


def parse_endpoint(text: str, *, option: str = "--endpoint") -> str:
    """``http://host:port`` checked for shape, without the trailing slash.

    Checked before anything connects, so ``--endpoint notaurl`` is one line naming the
    option instead of an error from deep inside the HTTP client.
    """
    parts = urlsplit(text.strip())
    example = "e.g. http://127.0.0.1:30000"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInputError(f"{option} {printable(text, 80)} is not an http(s) URL ({example})")
    try:
        port = parts.port
    except ValueError:
        raise BadInputError(f"{option} {printable(text, 80)}: invalid port ({example})") from None
    if port == 0:
        raise BadInputError(f"{option} {printable(text, 80)}: invalid port ({example})")
    if parts.query or parts.fragment:
        raise BadInputError(
            f"{option} {printable(text, 80)}: give the server's base URL ({example})"
        )
    return text.strip().rstrip("/")
