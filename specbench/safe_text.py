"""Text from outside (a server's body, a log line) made safe to print on a terminal.

A server that answers garbage must not be able to drive the user's terminal: raw bytes
can carry ANSI/OSC escape sequences (colour, cursor moves, window titles, hyperlinks,
even clipboard writes on some terminals), carriage returns that overwrite the error line,
and bidirectional overrides that reorder what is shown (CVE-2021-42574, "Trojan Source").
Everything a server said is passed through :func:`printable` before it reaches an error
message: control and format characters are shown as escapes and the text is cut short.
"""

from __future__ import annotations

import unicodedata

#: Characters of a server's text quoted in one error line.
DEFAULT_LIMIT = 160


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls (ESC, CR, BEL, CSI 0x9b...); Cf: format characters such as the
    # bidi overrides U+202E and zero-width joiners; Cs: lone surrogates; Zl/Zp: line and
    # paragraph separators that some terminals honour.
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def printable(data: bytes | str | None, limit: int = DEFAULT_LIMIT) -> str:
    """One line of at most ``limit`` characters (plus a cut note), safe to print.

    Bytes are decoded as UTF-8 with invalid sequences escaped; newlines and tabs become
    ``\\n``/``\\t`` so a multi-line body stays one line.
    """
    if data is None:
        return ""
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    out: list[str] = []
    shown = 0
    for index, ch in enumerate(text):
        if ch == "\n":
            piece = "\\n"
        elif ch == "\t":
            piece = "\\t"
        elif _unsafe(ch):
            piece = _escape(ch)
        else:
            piece = ch
        if shown + len(piece) > limit:
            rest = len(text) - index
            out.append(f"... ({rest} more character{'s' if rest != 1 else ''})")
            break
        out.append(piece)
        shown += len(piece)
    return "".join(out)


__all__ = ["DEFAULT_LIMIT", "printable"]
