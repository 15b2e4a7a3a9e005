"""The ``sglang`` backend: launch ``sglang.launch_server`` per configuration, or attach.

Launch mode starts one server per configuration (SGLang fixes the tree shape at start-up)
in its own process group, waits on ``/health_generate``, and stops the whole group when
the session ends, whatever ends it. Attach mode measures a server someone else runs: it
never restarts it, so it can only measure the configuration that server was started
with, and says so instead of silently measuring the wrong thing.

``launch_cmd`` wraps the launch for clusters and containers (``srun ...``,
``docker exec ...``); the tests use it to launch ``specbench serve-sim`` in place of
SGLang, which exercises every line of the real launch path without a GPU.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shlex
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specbench.errors import BadInputError, ServerError
from specbench.harness.backend import Backend, LoadSpec, ProgressCallback, Session
from specbench.harness.process import DEFAULT_GRACE_S, ManagedProcess, read_log_tail
from specbench.harness.records import RequestRecord
from specbench.spec_config import SpecConfig, config_key

if TYPE_CHECKING:
    from specbench.model import TargetPreset

#: Module SGLang's server is started from.
SGLANG_MODULE = "sglang.launch_server"
#: SGLang's own tests allow up to an hour for big models on H200; 30 minutes by default.
DEFAULT_READY_TIMEOUT_S = 1800.0
#: Seconds to keep retrying ``/flush_cache`` while the server reports pending requests.
FLUSH_RETRY_S = 30.0
#: Placeholders of ``launch_cmd``.
CMD_PLACEHOLDER = "{cmd}"
ARGS_PLACEHOLDER = "{args}"


# -- launch command -------------------------------------------------------------------
def build_launch_args(
    target: TargetPreset,
    config: SpecConfig | None,
    *,
    tp: int | None = None,
    port: int,
    host: str = "127.0.0.1",
    server_args: Sequence[str] = (),
) -> list[str]:
    """The ``sglang.launch_server`` arguments (without the interpreter and module).

    Order matters: user ``server_args`` come last so that they override the preset
    (argparse keeps the last value of a repeated flag). The baseline gets none of the
    speculative flags, not even the algorithm, so SGLang loads no draft model.
    """
    args = [
        "--model-path",
        target.model_path,
        "--host",
        host,
        "--port",
        str(port),
        "--tp-size",
        str(tp if tp is not None else target.default_tp),
    ]
    if target.default_ep is not None and target.default_ep > 1 and tp is None:
        args += ["--ep-size", str(target.default_ep)]
    if config is not None:
        args += [
            "--speculative-algorithm",
            target.algorithm,
            "--speculative-draft-model-path",
            target.draft_model_path,
            *config.sglang_flags(),
        ]
    args += list(target.extra_server_args)
    args += list(server_args)
    return args


def sglang_command(launch_args: Sequence[str], python: str | None = None) -> list[str]:
    """The full command: interpreter, ``-m sglang.launch_server``, arguments."""
    return [python or sys.executable, "-m", SGLANG_MODULE, *launch_args]


def compose_launch(launch_cmd: str | None, launch_args: Sequence[str]) -> list[str]:
    """Apply a user's ``launch_cmd`` template to the SGLang arguments.

    ``{cmd}`` becomes the full SGLang command, ``{args}`` only its arguments (for
    wrappers that bring their own interpreter); without a placeholder the full command
    is appended. The substituted values are shell-quoted before the template is split,
    so paths with spaces survive, and the result is an argument list, never a shell.
    """
    if launch_cmd is None or not launch_cmd.strip():
        return sglang_command(launch_args)
    if ARGS_PLACEHOLDER in launch_cmd:
        text = launch_cmd.replace(ARGS_PLACEHOLDER, shlex.join(launch_args))
    elif CMD_PLACEHOLDER in launch_cmd:
        text = launch_cmd.replace(CMD_PLACEHOLDER, shlex.join(sglang_command(launch_args)))
    else:
        text = launch_cmd + " " + shlex.join(sglang_command(launch_args))
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise BadInputError(f"cannot parse --launch-cmd {launch_cmd!r}: {exc}") from None
    if not argv:
        raise BadInputError("--launch-cmd is empty")
    return argv


def split_server_args(text: str | None) -> list[str]:
    """``--server-args "..."`` from the CLI as an argument list."""
    if not text:
        return []
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise BadInputError(f"cannot parse --server-args {text!r}: {exc}") from None


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


def _http(method: str, url: str, timeout_s: float) -> tuple[int, bytes]:
    """(status, body); raises URLError/OSError when nothing answers."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def fetch_server_info(endpoint: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """``GET /server_info``, falling back to the older ``/get_server_info``."""
    last = ""
    for path in ("/server_info", "/get_server_info"):
        try:
            status, body = _http("GET", endpoint + path, timeout_s)
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


def config_from_server_info(info: Mapping[str, Any]) -> SpecConfig | None:
    """The configuration a running server was started with (None: no speculation)."""
    if not info.get("speculative_algorithm"):
        return None
    try:
        return SpecConfig(
            int(info["speculative_num_steps"]),
            int(info["speculative_eagle_topk"]),
            int(info["speculative_num_draft_tokens"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ServerError(
            "the server runs speculation but its server info lacks speculative_num_steps/"
            "speculative_eagle_topk/speculative_num_draft_tokens"
        ) from None


def _triple(config: SpecConfig | None) -> str:
    if config is None:
        return "no speculation (baseline)"
    return f"({config.num_steps},{config.topk},{config.num_draft_tokens})"


# -- session ------------------------------------------------------------------------------
class HttpSession(Session):
    """A session against any server that speaks SGLang's native API.

    When specbench launched the server, ``process`` lets a failed run report why the
    server died (its log tail) instead of only "connection refused".
    """

    def __init__(
        self,
        endpoint: str,
        config: SpecConfig | None,
        *,
        process: ManagedProcess | None = None,
        simulated: bool = False,
    ) -> None:
        self.endpoint: str | None = endpoint.rstrip("/")
        self.config = config
        self.process = process
        self.simulated = simulated

    @property
    def url(self) -> str:
        assert self.endpoint is not None
        return self.endpoint

    def run(self, load: LoadSpec, progress: ProgressCallback | None = None) -> list[RequestRecord]:
        from specbench.harness.loadgen import run_closed_loop

        try:
            records = run_closed_loop(self.url, load, progress)
        except ServerError as exc:
            if self.process is not None:
                time.sleep(0.2)  # let a dying server finish writing its last words
                code = self.process.poll()
                state = f"exited with code {code}" if code is not None else "stopped answering"
                raise ServerError(
                    f"{exc} (the server {state}; log: {self.process.log_path})",
                    self.process.log_tail(),
                ) from None
            raise
        key = config_key(self.config)
        for record in records:
            record.concurrency = load.concurrency
            record.config_key = record.config_key or key
            record.simulated = record.simulated or self.simulated
        return records

    def flush_cache(self) -> None:
        """POST /flush_cache, retrying while SGLang answers 400 (requests still pending)."""
        deadline = time.monotonic() + FLUSH_RETRY_S
        while True:
            try:
                status, body = _http("POST", self.url + "/flush_cache", 30.0)
            except (urllib.error.URLError, OSError) as exc:
                raise ServerError(
                    f"cannot flush the cache of {self.url}: {getattr(exc, 'reason', exc)}",
                    self.process.log_tail() if self.process else "",
                ) from None
            if status == 200:
                return
            if status != 400 or time.monotonic() >= deadline:
                text = body.decode("utf-8", errors="replace").strip()[:200]
                raise ServerError(f"{self.url}/flush_cache answered HTTP {status}: {text}")
            time.sleep(0.25)

    def server_info(self) -> dict[str, Any]:
        return fetch_server_info(self.url)


# -- backend ------------------------------------------------------------------------------
class SglangBackend(Backend):
    """Real SGLang servers, launched per configuration or attached to."""

    name = "sglang"

    def __init__(
        self,
        target: TargetPreset,
        *,
        tp: int | None = None,
        server_args: Sequence[str] = (),
        launch_cmd: str | None = None,
        endpoint: str | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        if endpoint is not None and launch_cmd is not None:
            raise BadInputError("--endpoint attaches to a running server; drop --launch-cmd")
        if ready_timeout_s <= 0:
            raise BadInputError(f"ready timeout must be > 0 s (got {ready_timeout_s:g})")
        if tp is not None and tp < 1:
            raise BadInputError(f"--tp must be >= 1 (got {tp})")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise BadInputError(f"--endpoint must look like http://host:port (got {endpoint!r})")
        self.target = target
        self.tp = tp
        self.server_args = list(server_args)
        self.launch_cmd = launch_cmd
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.ready_timeout_s = ready_timeout_s
        self.host = host
        self.port = port
        self.env = dict(env) if env is not None else None
        self.grace_s = grace_s
        #: True when the server is ``specbench serve-sim``: known up front when the launch
        #: command runs it, otherwise learned from the server info it reports.
        self.simulated = launch_cmd is not None and "serve-sim" in launch_cmd
        self._last_info: dict[str, Any] = {}
        self._live: list[ManagedProcess] = []

    @property
    def attached(self) -> bool:
        return self.endpoint is not None

    def describe(self) -> dict[str, Any]:
        info = self._last_info
        return {
            "backend": self.name,
            "mode": "attach" if self.attached else "launch",
            "simulated": self.simulated,
            "target": self.target.name,
            "model_path": self.target.model_path,
            "tp": self.tp if self.tp is not None else info.get("tp_size", self.target.default_tp),
            "endpoint": self.endpoint,
            "server_args": list(self.server_args),
            "launch_cmd": self.launch_cmd,
            "sglang_version": info.get("version"),
        }

    def _note_info(self, info: dict[str, Any]) -> None:
        self._last_info = info
        if info.get("specbench_simulated") is True:
            self.simulated = True

    def session(
        self, config: SpecConfig | None, *, log_path: Path
    ) -> contextlib.AbstractContextManager[Session]:
        if self.attached:
            return self._attach(config)
        return self._launch(config, Path(log_path))

    @contextlib.contextmanager
    def _attach(self, config: SpecConfig | None) -> Iterator[Session]:
        assert self.endpoint is not None
        info = fetch_server_info(self.endpoint)
        self._note_info(info)
        running = config_from_server_info(info)
        if running != config:
            if config is None:
                raise BadInputError(
                    f"the server at {self.endpoint} runs {_triple(running)}; the no-speculation "
                    "baseline needs a server started without speculation, and attach mode never "
                    "restarts a server (attach to a baseline server, or let specbench launch)"
                )
            raise BadInputError(
                f"the server at {self.endpoint} runs {_triple(running)}; cannot measure "
                f"{_triple(config)} without restarting it (attach mode measures only the "
                "server's own configuration)"
            )
        yield HttpSession(self.endpoint, config, simulated=self.simulated)

    @contextlib.contextmanager
    def _launch(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        if self.port is not None:
            check_port_free(self.host, self.port)
            port = self.port
        else:
            port = free_port(self.host)
        launch_args = build_launch_args(
            self.target,
            config,
            tp=self.tp,
            port=port,
            host=self.host,
            server_args=self.server_args,
        )
        argv = compose_launch(self.launch_cmd, launch_args)
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in connect_host:
            connect_host = f"[{connect_host}]"
        endpoint = f"http://{connect_host}:{port}"
        proc = ManagedProcess(argv, log_path=log_path, env=self.env, grace_s=self.grace_s)
        try:
            # Started inside the ``try`` so that an interrupt landing right after the
            # start still reaches the ``finally`` that stops the group.
            self._live.append(proc)
            proc.start()
            wait_until_ready(endpoint, proc, self.ready_timeout_s)
            info: dict[str, Any] | None = None
            with contextlib.suppress(ServerError):
                info = fetch_server_info(endpoint)
            if info is not None:
                self._note_info(info)
                _check_launched_config(info, config, self.server_args)
            yield HttpSession(endpoint, config, process=proc, simulated=self.simulated)
        finally:
            proc.stop()
            with contextlib.suppress(ValueError):
                self._live.remove(proc)

    def close(self) -> None:
        for proc in list(self._live):
            proc.stop()
        self._live.clear()


def _check_launched_config(
    info: Mapping[str, Any], config: SpecConfig | None, server_args: Sequence[str]
) -> None:
    """Refuse to measure a server that runs another tree than the one asked for.

    User ``--server-args`` come last on the command line and so override the
    speculative flags specbench sets; without this check every trial would silently
    measure the overriding configuration under its own label. A server whose info
    lacks the speculative fields (not SGLang) is not judged.
    """
    if "speculative_algorithm" not in info:
        return
    try:
        running = config_from_server_info(info)
    except ServerError:
        return
    if running == config:
        return
    hint = " (check --server-args: it overrides the speculative flags)" if server_args else ""
    raise ServerError(f"the launched server runs {_triple(running)}, not {_triple(config)}{hint}")


def wait_until_ready(endpoint: str, proc: ManagedProcess, timeout_s: float) -> None:
    """Poll ``/health_generate`` until 200; fail fast if the process dies first.

    503 and connection refused both mean "still starting"; a model load takes minutes,
    so the poll interval grows to a few seconds rather than hammering the server.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    delay = 0.05
    while True:
        code = proc.poll()
        if code is not None:
            time.sleep(0.05)
            raise ServerError(
                f"the server exited with code {code} before it was ready "
                f"(command: {shlex.join(proc.args)}; log: {proc.log_path})",
                proc.log_tail(),
            )
        try:
            status, _ = _http("GET", endpoint + "/health_generate", min(10.0, max(1.0, timeout_s)))
            if status == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        now = time.monotonic()
        if now >= deadline:
            tail = proc.log_tail()
            proc.stop()
            raise ServerError(
                f"the server at {endpoint} was not ready after {timeout_s:g} s "
                f"(log: {proc.log_path}); raise the ready timeout for large models",
                tail,
            )
        time.sleep(min(delay, max(0.0, deadline - now)))
        delay = min(delay * 1.5, 2.0)


__all__ = [
    "DEFAULT_READY_TIMEOUT_S",
    "HttpSession",
    "SglangBackend",
    "build_launch_args",
    "check_port_free",
    "compose_launch",
    "config_from_server_info",
    "fetch_server_info",
    "free_port",
    "port_in_use",
    "read_log_tail",
    "sglang_command",
    "split_server_args",
    "wait_until_ready",
]
