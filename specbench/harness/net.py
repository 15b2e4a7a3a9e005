"""Ports and the small synchronous HTTP calls of the control plane (no event loop).

Shared by the launcher (free port, readiness, server info, cache flush) and by
serve-sim (a port check before it listens).
"""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from specbench.errors import BadInputError, ServerError


# -- ports ------------------------------------------------------------------------------
def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails; a TIME_WAIT leftover does not count."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise BadInputError(f"cannot use {host}:{port}: {exc.strerror or exc}") from None
    return False


def check_port_free(host: str, port: int) -> None:
    if port_in_use(host, port):
        raise BadInputError(f"port {port} is already in use on {host}")


def is_local_address(host: str) -> bool:
    """Whether ``host`` is an address of this machine (a server there can be checked
    and reached through it); False for another node, e.g. one ``srun`` runs on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (another process could still take it first)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- small synchronous HTTP helpers (no event loop needed for control calls) --------------
#: No proxies: the server is local or on the cluster network, and an http_proxy variable
#: meant for downloads would otherwise swallow every health check.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_call(method: str, url: str, timeout_s: float) -> tuple[int, bytes]:
    """(status, body); raises URLError/OSError when nothing answers."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def fetch_server_info(
    endpoint: str, paths: Sequence[str], timeout_s: float = 30.0
) -> dict[str, Any]:
    """The first of ``paths`` that answers 200 with a JSON object (an engine's
    ``server_info_paths``, newest first)."""
    last = ""
    for path in paths:
        try:
            status, body = http_call("GET", endpoint + path, timeout_s)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"cannot reach the server at {endpoint}: {reason}") from None
        if status == 200:
            try:
                info = json.loads(body)
            except json.JSONDecodeError:
                raise ServerError(f"{endpoint}{path} did not return JSON") from None
            if not isinstance(info, dict):
                raise ServerError(f"{endpoint}{path} did not return a JSON object")
            return info
        last = f"{path} -> HTTP {status}"
    raise ServerError(f"the server at {endpoint} has no server-info endpoint ({last})")


__all__ = [
    "check_port_free",
    "fetch_server_info",
    "free_port",
    "http_call",
    "is_local_address",
    "port_in_use",
]
