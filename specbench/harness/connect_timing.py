"""How long each request waited for a connection, from aiohttp's client tracing.

A request's clock starts before the client has a connection. Waiting in the client's
pool and opening a TCP connection (a SYN dropped by a full listen backlog is retried
after a second) are not the engine's work; timing them separately lets the measurement
window leave them out of the request's latency and flag a load where they were slow.
Uses aiohttp's TraceConfig hooks (``on_connection_queued_*``, ``on_connection_create_*``,
aiohttp/tracing.py), keyed by the per-request ``trace_request_ctx``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp


@dataclass
class ConnectTimer:
    """Milliseconds one request spent waiting in the pool and opening a connection."""

    connect_ms: float = 0.0
    _since: float | None = None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self.connect_ms += (time.perf_counter() - self._since) * 1000.0
            self._since = None


def _timer(context: SimpleNamespace) -> ConnectTimer | None:
    timer = getattr(context, "trace_request_ctx", None)
    return timer if isinstance(timer, ConnectTimer) else None


async def _start(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    timer = _timer(context)
    if timer is not None:
        timer.start()


async def _stop(_: aiohttp.ClientSession, context: SimpleNamespace, __: Any) -> None:
    timer = _timer(context)
    if timer is not None:
        timer.stop()


def connect_trace_config() -> aiohttp.TraceConfig:
    """A TraceConfig that fills the ConnectTimer passed as ``trace_request_ctx``."""
    config = aiohttp.TraceConfig()
    config.on_connection_queued_start.append(_start)
    config.on_connection_queued_end.append(_stop)
    config.on_connection_create_start.append(_start)
    config.on_connection_create_end.append(_stop)
    return config


__all__ = ["ConnectTimer", "connect_trace_config"]
