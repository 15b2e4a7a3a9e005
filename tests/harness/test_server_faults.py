"""Every way a server or a request can fail gives a clear message and leaves no process."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from specbench.errors import BadInputError, ServerError
from specbench.harness.net import free_port
from specbench.harness.server_backend import HttpSession, ServerBackend
from specbench.process.managed import live_process_groups
from specbench.spec_config import SpecConfig
from tests.support.servers import (
    FaultServer,
    assert_group_gone,
    read_pid,
    serve_sim_launch_cmd,
    small_load,
    wrap_with_pidfile,
)

CONFIG = SpecConfig(3, 4, 8)


def _py(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_server_that_exits_at_start(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    launch = wrap_with_pidfile(
        pidfile, _py("import sys; print('CUDA error: no device found'); sys.exit(3)")
    )
    backend = ServerBackend(target, launch_cmd=launch, ready_timeout_s=30)
    with (
        pytest.raises(ServerError, match="exited with code 3 before it was ready") as info,
        backend.session(CONFIG, log_path=tmp_path / "s.log"),
    ):
        pytest.fail("must not yield")
    assert "CUDA error: no device found" in info.value.log_tail
    assert_group_gone(read_pid(pidfile))
    assert live_process_groups() == []


def test_server_that_never_becomes_ready(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    # A leader with a grandchild, both asleep: the whole group must go.
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('loading weights...', flush=True); time.sleep(60)"
    )
    backend = ServerBackend(
        target, launch_cmd=wrap_with_pidfile(pidfile, _py(code)), ready_timeout_s=1.0, grace_s=2
    )
    t0 = time.monotonic()
    with (
        pytest.raises(ServerError, match=r"was not ready after 1 s") as info,
        backend.session(CONFIG, log_path=tmp_path / "s.log"),
    ):
        pytest.fail("must not yield")
    assert time.monotonic() - t0 < 10
    assert "loading weights" in info.value.log_tail
    assert_group_gone(read_pid(pidfile))


def test_server_that_dies_mid_run(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    backend = ServerBackend(
        target,
        launch_cmd=serve_sim_launch_cmd(pidfile, time_scale=0.3),
        ready_timeout_s=60,
        grace_s=2,
    )
    load = small_load(n=12, concurrency=3, max_new_tokens=200, warmup_requests=0)
    with (
        pytest.raises(ServerError, match="stopped accepting connections during the run") as info,
        backend.session(CONFIG, log_path=tmp_path / "s.log") as session,
    ):
        pgid = read_pid(pidfile)

        def kill_after_the_first_answer(done: int, _total: int) -> None:
            # 11 of 12 requests are still to come: the server dies during the run,
            # however slowly a busy machine gets there (a 0.5 s timer could fire before
            # the first request or after the last).
            if done == 1:
                os.killpg(pgid, signal.SIGKILL)

        session.run(load, progress=kill_after_the_first_answer)
    assert "exited with code" in str(info.value)
    assert "ready to roll" in info.value.log_tail
    assert_group_gone(pgid)


def test_port_already_taken_launches_nothing(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        backend = ServerBackend(target, launch_cmd=serve_sim_launch_cmd(pidfile), port=port)
        with (
            pytest.raises(BadInputError, match=f"port {port} is already in use"),
            backend.session(CONFIG, log_path=tmp_path / "s.log"),
        ):
            pytest.fail("must not yield")
    assert not pidfile.exists()


def test_attach_to_nothing(target) -> None:  # type: ignore[no-untyped-def]
    backend = ServerBackend(target, endpoint=f"http://127.0.0.1:{free_port()}")
    with (
        pytest.raises(ServerError, match="cannot reach the server"),
        backend.session(CONFIG, log_path=Path("unused.log")),
    ):
        pass


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("500", "HTTP 500: Internal Server Error: injected fault"),
        ("sse-error", "server error: injected failure"),
        ("hang", "timed out after 0.3 s"),
        ("cut", "connection lost mid-response"),
    ],
)
def test_request_errors_become_records(mode: str, message: str) -> None:
    with FaultServer(mode) as server:
        session = HttpSession(server.endpoint, CONFIG)
        load = small_load(
            n=3, concurrency=3, max_new_tokens=4, request_timeout_s=0.3, warmup_requests=0
        )
        t0 = time.monotonic()
        records = session.run(load)
        assert time.monotonic() - t0 < 5
    assert len(records) == 3
    for record in records:
        assert record.error is not None and message in record.error, record.error
        assert record.e2e_ms is None and record.concurrency == 3
    session_ok = None
    with FaultServer("ok") as server:
        session_ok = HttpSession(server.endpoint, CONFIG).run(small_load(n=2, concurrency=1))
    assert all(r.ok and r.completion_tokens == 4 and r.spec_verify_ct == 4 for r in session_ok)
    assert all(len(r.itl_ms) == 3 for r in session_ok)


def test_refused_connection_is_a_server_error() -> None:
    session = HttpSession(f"http://127.0.0.1:{free_port()}", None)
    with pytest.raises(ServerError, match="stopped accepting connections"):
        session.run(small_load(n=2, concurrency=1, warmup_requests=0))


def test_ctrl_c_inside_a_session_stops_the_server(tmp_path: Path, target) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "pid"
    backend = ServerBackend(target, launch_cmd=serve_sim_launch_cmd(pidfile), ready_timeout_s=60)
    with pytest.raises(KeyboardInterrupt), backend.session(CONFIG, log_path=tmp_path / "s.log"):
        pgid = read_pid(pidfile)
        raise KeyboardInterrupt
    assert_group_gone(pgid)
    assert live_process_groups() == []
