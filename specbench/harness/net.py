"""Ports and the small synchronous HTTP calls of the control plane (no event loop).

Shared by the launcher (free port, readiness, server info, cache flush) and by
serve-sim (a port check before it listens).
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from specbench.errors import BadInputError, ServerError
from specbench.safe_text import printable


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


#: Bytes of a control response read at most: server info is a few KB, and a server that
#: streams garbage must not fill the memory.
MAX_CONTROL_BODY = 4 * 1024**2


def http_call(method: str, url: str, timeout_s: float) -> tuple[int, bytes]:
    """(status, body); raises OSError (URLError included) when nothing answers in HTTP.

    A peer that answers with something other than HTTP (http.client's BadStatusLine,
    whose message quotes the peer's raw bytes) becomes an OSError whose text is made
    terminal-safe, so callers handle "no server" and "not a server" alike.
    """
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read(MAX_CONTROL_BODY)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(MAX_CONTROL_BODY)
    except (http.client.HTTPException, ValueError) as exc:
        # ValueError: http.client rejects header lines that are too long or malformed.
        raise OSError(
            f"not an HTTP answer ({type(exc).__name__}: {printable(str(exc), 80)})"
        ) from None


#: Characters kept of one server-info string (model paths stay whole).
INFO_TEXT_LIMIT = 1000


def printable_fields(value: Any) -> Any:
    """``value`` with every string in it passed through ``printable``: a server's
    description (``version``, ``served_model_name``...) reaches the terminal, the
    log's console echo and the report, and must not carry escape sequences there."""
    if isinstance(value, str):
        return printable(value, INFO_TEXT_LIMIT)
    if isinstance(value, dict):
        return {printable(str(k), INFO_TEXT_LIMIT): printable_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable_fields(v) for v in value]
    return value


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
            reason = printable(str(getattr(exc, "reason", exc)), 160)
            raise ServerError(f"cannot reach the server at {endpoint}: {reason}") from None
        if status == 200:
            try:
                info = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise ServerError(
                    f'{endpoint}{path} did not return JSON (it began "{printable(body, 60)}")'
                ) from None
            if not isinstance(info, dict):
                raise ServerError(f"{endpoint}{path} did not return a JSON object")
            return dict(printable_fields(info))
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
