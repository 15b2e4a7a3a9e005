"""Launch lines a user pastes into a shell: quoted so the shell hands every argument over
unchanged, except a variable reference left in a path.

A preset names a locally built model by variable (tiny-llama: ``${SPECBENCH_TINY_MODELS}``).
Where the variable is set, the line is built with the path expanded; where it is not,
``shlex.join`` would single-quote the reference, and a pasted line would hand the server
the literal ``${SPECBENCH_TINY_MODELS}/target``. Such an argument is double-quoted
instead, so that the shell it is pasted into expands it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

#: ``${NAME}``, the form presets write (a bare ``$`` elsewhere stays literal).
_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
#: What a double-quoted shell word must escape.
_DOUBLE_QUOTED_SPECIAL = re.compile(r'(["\\`$])')


def shell_word(arg: str) -> str:
    """``arg`` quoted for a POSIX shell, its variable references left expandable."""
    if not _VARIABLE.search(arg):
        return shlex.quote(arg)
    parts: list[str] = []
    last = 0
    for match in _VARIABLE.finditer(arg):
        parts.append(_DOUBLE_QUOTED_SPECIAL.sub(r"\\\1", arg[last : match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(_DOUBLE_QUOTED_SPECIAL.sub(r"\\\1", arg[last:]))
    return '"' + "".join(parts) + '"'


def shell_line(argv: Sequence[str]) -> str:
    """``argv`` as one copyable line (``shlex.join`` but for :func:`shell_word`)."""
    return " ".join(shell_word(arg) for arg in argv)


__all__ = ["shell_line", "shell_word"]
