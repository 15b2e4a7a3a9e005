"""Server text made safe for a terminal."""

from __future__ import annotations

from specbench.safe_text import printable


def test_printable_escapes_terminal_control_sequences() -> None:
    hostile = b"\x1b]0;pwned\x07\x1b[2J\rHTTP/1.1 \x9b31m\xe2\x80\xaeevil\x00"
    shown = printable(hostile)
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert "\x9b" not in shown and "\u202e" not in shown and "\x00" not in shown
    assert "\\x1b" in shown and "\\u202e" in shown
    assert shown.isprintable()


def test_printable_cuts_long_text_and_keeps_one_line() -> None:
    shown = printable("a\nb" * 1000, limit=20)
    assert "\n" not in shown
    assert shown.endswith("more characters)")
    assert len(shown) < 60


def test_printable_of_invalid_utf8_is_escaped() -> None:
    assert printable(b"ok \xff\xfe") == "ok \\xff\\xfe"
