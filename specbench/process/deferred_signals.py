"""Ctrl-C and SIGTERM held back while a write must finish whole.

A sweep turns SIGINT and SIGTERM into KeyboardInterrupt so that the running trial is
marked failed and its server stopped. Raised at an arbitrary bytecode, that exception can
land inside a write that must not be cut: Optuna's journal append (a lock file renamed
and removed around the appended lines) turned a SIGTERM into FileNotFoundError for its
own ``*.rename`` file, which read as an unwritable --out (exit 2, not 130) and left the
lock behind. Inside `deferred_signals` the signal is recorded, not acted on, and
delivered to the previous handler the moment the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_depth = 0


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Run the block with SIGINT/SIGTERM postponed to its end (main thread only; nested
    blocks defer to the outermost one, elsewhere the block runs unchanged)."""
    global _depth
    if _depth or threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in _SIGNALS:
        previous[sig] = signal.signal(sig, record)
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        for restored, handler in previous.items():
            if handler is not None:  # None: installed outside Python, left as it is
                signal.signal(restored, handler)
        for signum in dict.fromkeys(pending):  # once each, in arrival order
            signal.raise_signal(signum)


__all__ = ["deferred_signals"]
