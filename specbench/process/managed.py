"""A child process that can never outlive specbench: own process group, killed as a group.

An SGLang server is a tree (the HTTP server, a scheduler per GPU, a detokenizer, NCCL
helpers); killing only the process we started leaves the rest holding GPU memory, and
the next configuration then fails with an out-of-memory error that looks unrelated.
So every server starts as the leader of a new session (``start_new_session=True``)
and is stopped by signalling the whole group: SIGTERM first, so SGLang can release the
GPUs, then SIGKILL after a grace period, or at once when the wait itself is
interrupted. SIGTERM/SIGHUP to specbench become SystemExit, so every pending
``finally`` stops its server, and a registry of live groups is stopped at interpreter
exit as a safety net for paths that skip the context manager.

None of that runs when specbench itself is SIGKILLed. For that case the group's leader
is a tiny guardian (specbench/process/guardian.py) that stops the group when its parent
dies, and a pidfile in the run directory lets the next run reap what is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from specbench.errors import ServerError
from specbench.process import guardian
from specbench.process.server_pidfile import forget_server, record_server

#: Seconds between SIGTERM and SIGKILL; SGLang usually exits in a few seconds, but a
#: scheduler stuck in an NCCL call only dies to SIGKILL.
DEFAULT_GRACE_S = 15.0
#: Lines of the log quoted in errors: enough to show a Python traceback's last frames.
LOG_TAIL_LINES = 40

_live: dict[int, ManagedProcess] = {}
_live_lock = threading.Lock()
_safety_net_installed = False


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists, zombies included."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a recycled id owned by someone else
        return False
    return True


def _group_has_running_members(pgid: int) -> bool:
    """True while a non-zombie process of the group exists.

    Orphaned grandchildren are reaped by PID 1, which in containers can take a second
    or more; a zombie holds no GPU memory or port, so waiting for its reaping would only
    slow every stop. Falls back to ``group_alive`` where /proc is unavailable.
    """
    if not group_alive(pgid):
        return False
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # fields: state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = 64_000) -> str:
    """The last lines of a log file, or "" when it does not exist yet."""
    try:
        with Path(path).open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One child process group with its output appended to a log file.

    Use as a context manager (``with ManagedProcess(...) as proc:``); ``stop`` is
    idempotent and safe to call from the safety net and from ``finally`` blocks alike.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        die_with_parent: bool = True,
        pidfile: Path | None = None,
        owner: str = "",
    ) -> None:
        if not args:
            raise ValueError("empty command")
        self.args: list[str] = [str(a) for a in args]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.grace_s = grace_s
        #: Start the command under the guardian, so the group dies with this process.
        self.die_with_parent = die_with_parent
        #: Where to record the running group for a later run to reap (None: nowhere).
        self.pidfile = pidfile
        self.owner = owner
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._stop_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ManagedProcess:
        if self._popen is not None:
            raise RuntimeError("process already started")
        _install_safety_net()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        header = f"# specbench: starting {subprocess.list2cmdline(self.args)}\n"
        self._log.write(header.encode())
        self._log.flush()
        env = None
        if self.env is not None:
            env = {**os.environ, **self.env}
        argv = self.args
        if self.die_with_parent:
            # The guardian would start and then fail to exec: refuse a missing command here,
            # as Popen does for a command started directly.
            path = (self.env or {}).get("PATH", os.environ.get("PATH"))
            if shutil.which(self.args[0], path=path) is None:
                self._close_log()
                raise ServerError(
                    f"cannot start {self.args[0]!r}: no such executable",
                    read_log_tail(self.log_path),
                )
            argv = [
                sys.executable,
                guardian.__file__,
                "--parent",
                str(os.getpid()),
                "--grace",
                f"{self.grace_s:g}",
                "--",
                *self.args,
            ]
        try:
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise ServerError(
                f"cannot start {self.args[0]!r}: {exc.strerror or exc}",
                read_log_tail(self.log_path),
            ) from None
        with _live_lock:
            _live[self._popen.pid] = self
        if self.pidfile is not None:
            record_server(self.pidfile, self._popen.pid, argv, self.owner, str(self.log_path))
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError("process not started")
        return self._popen.pid

    #: The group id equals the leader's pid because the leader started a new session.
    pgid = pid

    def poll(self) -> int | None:
        """Exit code of the leader, or None while it runs."""
        return None if self._popen is None else self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return read_log_tail(self.log_path, lines)

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM the group, SIGKILL it after the grace period; return the exit code.

        Waits until no process of the group is left, not only the leader, because
        SGLang's scheduler processes can outlive the HTTP server that started them.
        """
        if self._popen is None:
            return None
        grace = self.grace_s if grace_s is None else grace_s
        with self._stop_lock:
            pgid = self._popen.pid
            try:
                if self._popen.poll() is None or group_alive(pgid):
                    self._signal_group(signal.SIGTERM)
                    if not self._wait_group_gone(grace):
                        self._signal_group(signal.SIGKILL)
                        self._wait_group_gone(5.0)
            except BaseException:
                # Interrupted while waiting for a graceful exit (a second Ctrl-C, a
                # SIGTERM turned into an exception): there is no time left for grace,
                # and nobody may come back to finish the job, so kill the group now.
                self._signal_group(signal.SIGKILL)
                raise
            finally:
                with _live_lock:
                    _live.pop(pgid, None)
                self._close_log()
                if self.pidfile is not None and not _group_has_running_members(pgid):
                    forget_server(self.pidfile)
            return self._popen.poll()

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def _wait_group_gone(self, timeout_s: float) -> bool:
        assert self._popen is not None
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            self._popen.poll()  # reap the leader, or it stays a zombie of the group
            if not _group_has_running_members(self._popen.pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> ManagedProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def live_process_groups() -> list[int]:
    """Groups started by this interpreter and not yet stopped (for tests and debugging)."""
    with _live_lock:
        return list(_live)


def stop_all(grace_s: float = 5.0) -> None:
    """Stop every live group; the safety net behind the context managers.

    An interruption while one group is stopped does not spare the others: they are
    killed at once, then the interruption is raised again.
    """
    with _live_lock:
        procs = list(_live.values())
    interrupted: BaseException | None = None
    for proc in procs:
        try:
            proc.stop(0.0 if interrupted is not None else grace_s)
        except Exception:  # a safety net must reach every group
            continue
        except BaseException as exc:
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


def _on_terminate(signum: int, frame: FrameType | None) -> None:
    # Only raise: every pending ``finally`` then stops its own server and the atexit
    # hook catches anything left. Stopping servers here instead would deadlock when the
    # signal lands while the main thread is inside ``stop`` (it holds the stop lock),
    # which is exactly when a job scheduler's SIGTERM tends to arrive.
    raise SystemExit(128 + signum)


def _install_safety_net() -> None:
    """Register the atexit hook once, and SIGTERM/SIGHUP handlers if nobody else has."""
    global _safety_net_installed
    if _safety_net_installed:
        return
    _safety_net_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) in (signal.SIG_DFL, None):
                signal.signal(sig, _on_terminate)


__all__ = [
    "DEFAULT_GRACE_S",
    "ManagedProcess",
    "group_alive",
    "live_process_groups",
    "read_log_tail",
    "stop_all",
]
