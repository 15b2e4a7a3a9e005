"""Real servers: launch an engine per configuration, or attach to a running one.

Everything engine-specific (arguments, readiness path, server info, configuration
rules) comes from the engine adapter (``specbench.harness.engine``); this module owns
the lifecycle. Launch mode starts one server per configuration (SGLang fixes the tree
shape at start-up) in its own process group, waits on the adapter's ready path, and
stops the whole group when
the session ends, whatever ends it. Attach mode measures a server someone else runs: it
never restarts it, so it can only measure the configuration that server was started
with, and says so instead of silently measuring the wrong thing.

``launch_cmd`` wraps the launch for clusters and containers (``srun ...``,
``docker exec ...``); the tests use it to launch ``specbench serve-sim`` in place of
SGLang, which exercises every line of the real launch path without a GPU.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
import urllib.error
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, ServerError
from specbench.harness.acceptance_stats import load_acceptance
from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.backend import (
    Backend,
    LoadFailedError,
    LoadSpec,
    ProgressCallback,
    Session,
    StallCallback,
)
from specbench.harness.engine import Deployment, EngineAdapter, TargetLike
from specbench.harness.loadgen import run_closed_loop
from specbench.harness.loads import RateRun
from specbench.harness.net import (
    check_port_free,
    free_port,
    http_call,
    is_local_address,
)
from specbench.harness.rate_metrics import OpenLoopRun
from specbench.harness.sglang import SGLANG
from specbench.process.managed import DEFAULT_GRACE_S, ManagedProcess
from specbench.process.server_pidfile import pidfile_path
from specbench.process.shm import remove_orphans, shm_files
from specbench.rundir.records import RequestRecord
from specbench.safe_text import printable
from specbench.spec_config import SpecConfig, config_key

#: SGLang's own tests allow up to an hour for big models on H200; 30 minutes by default.
DEFAULT_READY_TIMEOUT_S = 1800.0
#: Seconds to keep retrying ``/flush_cache`` while the server reports pending requests.
FLUSH_RETRY_S = 30.0
#: Placeholders of ``launch_cmd``.
CMD_PLACEHOLDER = "{cmd}"
ARGS_PLACEHOLDER = "{args}"


# -- launch command -------------------------------------------------------------------
def compose_launch(
    launch_cmd: str | None, launch_args: Sequence[str], engine: EngineAdapter = SGLANG
) -> list[str]:
    """Apply a user's ``launch_cmd`` template to the engine's arguments.

    ``{cmd}`` becomes the full SGLang command, ``{args}`` only its arguments (for
    wrappers that bring their own interpreter); without a placeholder the full command
    is appended. The substituted values are shell-quoted before the template is split,
    so paths with spaces survive, and the result is an argument list, never a shell.
    """
    if launch_cmd is None or not launch_cmd.strip():
        return engine.command(launch_args, sys.executable)
    if ARGS_PLACEHOLDER in launch_cmd:
        text = launch_cmd.replace(ARGS_PLACEHOLDER, shlex.join(launch_args))
    elif CMD_PLACEHOLDER in launch_cmd:
        text = launch_cmd.replace(
            CMD_PLACEHOLDER, shlex.join(engine.command(launch_args, sys.executable))
        )
    else:
        text = launch_cmd + " " + shlex.join(engine.command(launch_args, sys.executable))
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
        engine: EngineAdapter = SGLANG,
    ) -> None:
        self.endpoint: str | None = endpoint.rstrip("/")
        self.config = config
        self.process = process
        self.simulated = simulated
        self.engine = engine
        #: Acceptance of the last load (tau with its source, per position); None for
        #: the baseline.
        self.last_acceptance: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        assert self.endpoint is not None
        return self.endpoint

    def run(
        self,
        load: LoadSpec,
        progress: ProgressCallback | None = None,
        stalls: StallCallback | None = None,
    ) -> list[RequestRecord]:
        before: dict[str, Any] | None = None

        def snapshot() -> None:
            """The engine's counters after the warm-up, so that only the measured
            requests count (vLLM's acceptance counters are server-wide)."""
            nonlocal before
            if self.config is not None:
                before = self.engine.spec_counters(self.url)

        try:
            records = run_closed_loop(
                self.url,
                load,
                progress,
                engine=self.engine,
                on_stall=stalls,
                on_measure_start=snapshot,
                config=self.config,
            )
            delta = None
            if before is not None:
                after = self.engine.spec_counters(self.url)
                delta = _counter_delta(before, after) if after is not None else None
        except LoadFailedError as exc:
            self._label(exc.records, load)
            if self.process is not None:
                time.sleep(0.2)  # let a dying server finish writing its last words
                code = self.process.poll()
                state = f"exited with code {code}" if code is not None else "stopped answering"
                raise LoadFailedError(
                    f"{exc} (the server {state}; log: {self.process.log_path})",
                    self.process.log_tail(),
                    exc.records,
                ) from None
            raise
        self._label(records, load)
        if self.config is not None:
            rejected = None
            if delta is not None:
                tokens = sum(r.completion_tokens for r in records if r.ok)
                rejected = self.engine.counters_problem(delta, tokens, self.config)
            self.last_acceptance = load_acceptance(records, None if rejected else delta)
            if rejected:
                # A counter delta that cannot be true is no tau source; it is kept
                # beside the reason so the run directory shows what was refused.
                self.last_acceptance["counters_refused"] = {"counters": delta, "reason": rejected}
        return records

    def run_rate(self, run: RateRun, progress: ProgressCallback | None = None) -> OpenLoopRun:
        """The rate load through the open-loop client; against serve-sim at its time
        scale, on its virtual clock."""
        from specbench.harness.open_loop_client import run_open_loop

        scale = None
        if self.simulated:
            reported = self.server_info().get("specbench_time_scale")
            scale = float(reported) if isinstance(reported, (int, float)) else None
        try:
            result = run_open_loop(
                self.url,
                run,
                progress,
                engine=self.engine,
                config=self.config,
                sim_time_scale=scale,
            )
        except LoadFailedError as exc:
            if self.process is not None:
                code = self.process.poll()
                state = f"exited with code {code}" if code is not None else "stopped answering"
                raise LoadFailedError(
                    f"{exc} (the server {state}; log: {self.process.log_path})",
                    self.process.log_tail(),
                    exc.records,
                ) from None
            raise
        key = config_key(self.config)
        for record in result.records:
            record.config_key = record.config_key or key
            record.simulated = record.simulated or self.simulated
        return result

    def _label(self, records: list[RequestRecord], load: LoadSpec) -> None:
        key = config_key(self.config)
        for record in records:
            record.concurrency = load.concurrency
            record.config_key = record.config_key or key
            record.simulated = record.simulated or self.simulated

    def flush_cache(self) -> None:
        """POST the engine's flush path, retrying while SGLang answers 400 (requests
        still pending); a 404 means the engine does not offer it (vLLM outside dev mode)."""
        deadline = time.monotonic() + FLUSH_RETRY_S
        path = self.engine.flush_path
        while True:
            try:
                status, body = http_call("POST", self.url + path, 30.0)
            except (urllib.error.URLError, OSError) as exc:
                raise ServerError(
                    f"cannot flush the cache of {self.url}: "
                    f"{printable(str(getattr(exc, 'reason', exc)), 160)}",
                    self.process.log_tail() if self.process else "",
                ) from None
            if status == 200 or (status == 404 and path != SGLANG.flush_path):
                return
            if status != 400 or time.monotonic() >= deadline:
                text = printable(body.strip(), 200)
                raise ServerError(f"{self.url}{path} answered HTTP {status}: {text}")
            time.sleep(0.25)

    def server_info(self) -> dict[str, Any]:
        return self.engine.fetch_info(self.url)


# -- backend ------------------------------------------------------------------------------
class ServerBackend(Backend):
    """Real servers of one engine, launched per configuration or attached to."""

    runs_rate_loads = True

    def __init__(
        self,
        target: TargetLike,
        *,
        engine: EngineAdapter = SGLANG,
        tp: int | None = None,
        server_args: Sequence[str] = (),
        launch_cmd: str | None = None,
        endpoint: str | None = None,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        max_batch: int | None = None,
        config_check: bool = True,
    ) -> None:
        if ready_timeout_s <= 0:
            raise BadInputError(f"ready timeout must be > 0 s (got {ready_timeout_s:g})")
        if tp is not None and tp < 1:
            raise BadInputError(f"--tp must be >= 1 (got {tp})")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise BadInputError(f"--endpoint must look like http://host:port (got {endpoint!r})")
        self.target = target
        self.engine = engine
        self.name = engine.name
        self.tp = tp
        self.server_args = list(server_args)
        self.launch_cmd = launch_cmd
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.ready_timeout_s = ready_timeout_s
        self.host = host
        self.port = port
        self.env = dict(env) if env is not None else None
        self.grace_s = grace_s
        #: Every launched server is sized for this batch (the sweep's highest concurrency).
        self.max_batch = max_batch
        #: Compare each launched server's /server_info with what was asked for.
        self.config_check = config_check
        #: Seconds each launched server took to become ready, in launch order.
        self.launch_times_s: list[float] = []
        #: True when the server is ``specbench serve-sim``: known up front when the launch
        #: command runs it, otherwise learned from the server info it reports.
        self.simulated = launch_cmd is not None and "serve-sim" in launch_cmd
        self._last_info: dict[str, Any] = {}
        self._live: list[ManagedProcess] = []
        #: Run directory whose servers/ holds a pidfile per launched server (set by the
        #: sweep once the directory is known), and the worker that owns them.
        self.server_registry: Path | None = None
        self.owner = ""
        if endpoint is None:
            _check_paths_resolved(Deployment.of(target, tp=tp))

    @property
    def attached(self) -> bool:
        return self.endpoint is not None

    def describe(self) -> dict[str, Any]:
        info = self._last_info
        return {
            "backend": self.name,
            "mode": "attach" if self.attached else "launch",
            "simulated": self.simulated,
            "target": getattr(self.target, "name", None),
            "model_path": self.target.model_path,
            "tp": self.tp if self.tp is not None else info.get("tp_size", self.target.default_tp),
            "endpoint": self.endpoint,
            "server_args": list(self.server_args),
            "launch_cmd": self.launch_cmd,
            **self.engine.manifest_fields(info),
            "engine_version": info.get("version"),
            # serve-sim's --time-scale: how long its waits were, not what was measured.
            "sim_time_scale": info.get("specbench_time_scale"),
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

    def seeded_session(
        self,
        config: SpecConfig | None,
        adaptive: AdaptiveSpec | None,
        *,
        log_path: Path,
        seed: int,
    ) -> contextlib.AbstractContextManager[Session]:
        """A launched server at ``config`` that, with ``adaptive``, serves that adaptive
        config in its engine's own format (the file beside the log where the engine reads
        one). A real server draws its own acceptance: ``seed`` is the simulator's."""
        if self.attached:
            raise BadInputError("attach mode measures the attached server only: no ramp servers")
        return self._launch(config, Path(log_path), adaptive=adaptive)

    @contextlib.contextmanager
    def _attach(self, config: SpecConfig | None) -> Iterator[Session]:
        assert self.endpoint is not None
        info = self.engine.fetch_info(self.endpoint)
        self._note_info(info)
        running = self.engine.config_from_server_info(info)
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
        yield HttpSession(self.endpoint, config, simulated=self.simulated, engine=self.engine)

    def launched_deployment(self) -> Deployment:
        """What every launched server is started as (before ``--server-args``). The flags
        are spelled for the release this interpreter starts; a --launch-cmd may start
        another one, and then the newest spelling is assumed."""
        version = self.engine.local_version() if not self.launch_cmd else None
        return Deployment.of(
            self.target, tp=self.tp, max_batch=self.max_batch, engine_version=version
        )

    def _port(self) -> int:
        """The port to launch on; checked only where this machine can check it (a server
        on another node, ``--host node17``, is reached there, not bound here)."""
        local = is_local_address(self.host) or self.host in ("0.0.0.0", "::", "")
        if self.port is not None:
            if local:
                check_port_free(self.host, self.port)
            return self.port
        return free_port(self.host if local else "127.0.0.1")

    @contextlib.contextmanager
    def _launch(
        self, config: SpecConfig | None, log_path: Path, *, adaptive: AdaptiveSpec | None = None
    ) -> Iterator[Session]:
        port = self._port()
        deployment = self.launched_deployment()
        launch_args = self.engine.launch_args(
            deployment, config, host=self.host, port=port, server_args=self.server_args
        )
        if adaptive is not None:
            path = log_path.with_suffix(".adaptive.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(dict(adaptive.body), indent=2) + "\n", encoding="utf-8")
            launch_args = adaptive.format.adapt_args(launch_args, adaptive.body, str(path))
        argv = compose_launch(self.launch_cmd, launch_args, self.engine)
        connect_host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in connect_host:
            connect_host = f"[{connect_host}]"
        endpoint = f"http://{connect_host}:{port}"
        pidfile = (
            pidfile_path(self.server_registry, self.owner or "worker")
            if self.server_registry is not None
            else None
        )
        proc = ManagedProcess(
            argv,
            log_path=log_path,
            env=self.env,
            grace_s=self.grace_s,
            pidfile=pidfile,
            owner=self.owner,
        )
        pattern = self.engine.shm_pattern
        shm_before = shm_files(pattern) if pattern else set()
        try:
            # Started inside the ``try`` so that an interrupt landing right after the
            # start still reaches the ``finally`` that stops the group.
            self._live.append(proc)
            started = time.monotonic()
            proc.start()
            wait_until_ready(endpoint, proc, self.ready_timeout_s, self.engine.ready_path)
            self.launch_times_s.append(time.monotonic() - started)
            self._check_launched(endpoint, deployment, config)
            yield HttpSession(
                endpoint, config, process=proc, simulated=self.simulated, engine=self.engine
            )
        finally:
            proc.stop()
            if pattern:
                remove_orphans(pattern, shm_before)
            with contextlib.suppress(ValueError):
                self._live.remove(proc)

    def _check_launched(
        self, endpoint: str, deployment: Deployment, config: SpecConfig | None
    ) -> None:
        """Refuse to measure a server that is not the one asked for.

        User ``--server-args`` come last on the command line and so override what
        specbench sets; without this check every trial would silently measure the
        overriding configuration under its own label. The check always runs unless
        ``--no-config-check`` skips it (recorded in the manifest).
        """
        if not self.config_check:
            with contextlib.suppress(ServerError):
                self._note_info(self.engine.fetch_info(endpoint))
            return
        try:
            info = self.engine.fetch_info(endpoint)
        except ServerError as exc:
            raise ServerError(
                f"cannot check the launched server's configuration: {exc} "
                "(--no-config-check skips the check)"
            ) from None
        self._note_info(info)
        problems = self.engine.config_problems(info, deployment, config)
        if problems:
            hint = (
                " (check --server-args: it overrides specbench's flags)" if self.server_args else ""
            )
            raise ServerError(
                f"the launched server is not {_triple(config)} as asked: "
                f"{'; '.join(problems)}{hint} (--no-config-check skips the check)"
            )

    def close(self) -> None:
        for proc in list(self._live):
            proc.stop()
        self._live.clear()


def _check_paths_resolved(deployment: Deployment) -> None:
    """A preset path naming an unset environment variable would start a server that
    fails minutes later on a missing model; say which variable to set instead."""
    for path in (deployment.model_path, deployment.draft_model_path):
        if "${" in path or path.startswith("$"):
            raise BadInputError(
                f"the target's model path {path!r} names an unset environment variable "
                "(for tiny-llama: export SPECBENCH_TINY_MODELS=<folder printed by "
                "tools/tiny_models.py>)"
            )


def _counter_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Counters over the measured requests: after minus before, per position too."""
    now = [float(v) for v in after.get("accepted_per_position") or []]
    old = [float(v) for v in before.get("accepted_per_position") or []]
    old += [0.0] * (len(now) - len(old))
    return {
        **{k: float(after.get(k) or 0.0) - float(before.get(k) or 0.0) for k in _COUNTERS},
        "accepted_per_position": [a - b for a, b in zip(now, old, strict=False)],
    }


_COUNTERS = ("drafts", "draft_tokens", "accepted")


def wait_until_ready(
    endpoint: str, proc: ManagedProcess, timeout_s: float, ready_path: str = SGLANG.ready_path
) -> None:
    """Poll the engine's ready path until 200; fail fast if the process dies first.

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
            status, _ = http_call("GET", endpoint + ready_path, min(10.0, max(1.0, timeout_s)))
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
    "ServerBackend",
    "compose_launch",
    "split_server_args",
    "wait_until_ready",
]
