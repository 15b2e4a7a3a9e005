"""Regressions found in review: orphans on interrupted stops, SGLang stream details, and
launched servers that run another configuration than the one asked for."""

from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from specbench.errors import ServerError
from specbench.harness.server_backend import HttpSession, ServerBackend
from specbench.model import load_target
from specbench.process.managed import ManagedProcess, live_process_groups
from specbench.spec_config import SpecConfig
from tests.support.servers import (
    FaultServer,
    assert_group_gone,
    group_exists,
    in_thread_serve_sim,
    read_pid,
    serve_sim_launch_cmd,
    small_load,
)

CONFIG = SpecConfig(3, 4, 8)

#: A server that ignores SIGTERM (a scheduler stuck in NCCL does, in effect).
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('sig' + 'term-ignored', flush=True); time.sleep(120)"
)
#: Printed by STUBBORN once SIGTERM is ignored (the command line in the log's header
#: does not contain it, so waiting for it really waits for the child).
STUBBORN_READY = "sigterm-ignored"


def _wait_for(path: Path, text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)


def test_interrupt_during_graceful_stop_kills_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while stop() waits out the grace period must not leave the group."""
    log = tmp_path / "s.log"
    proc = ManagedProcess([sys.executable, "-c", STUBBORN], log_path=log, grace_s=60).start()
    _wait_for(log, STUBBORN_READY)
    # Event-driven, not a timer: the interrupt is sent once stop() has sent SIGTERM, so it
    # lands inside the 60 s grace wait however busy the machine is.
    sigterm_sent = threading.Event()
    signal_group = proc._signal_group

    def signal_and_tell(sig: signal.Signals) -> None:
        signal_group(sig)
        if sig == signal.SIGTERM:
            sigterm_sent.set()

    def interrupt_once_terminated() -> None:
        if sigterm_sent.wait(timeout=60):
            _thread.interrupt_main()

    monkeypatch.setattr(proc, "_signal_group", signal_and_tell)
    interrupter = threading.Thread(target=interrupt_once_terminated, daemon=True)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        proc.stop()
    interrupter.join(timeout=60)
    assert_group_gone(proc.pgid)
    assert proc.pgid not in live_process_groups()


def test_sigterm_to_specbench_during_stop_neither_hangs_nor_orphans(tmp_path: Path) -> None:
    """SIGTERM landing inside stop() used to deadlock on the stop lock (the handler
    stopped servers itself), leaving specbench hung and the server alive."""
    pidfile = tmp_path / "pgid"
    script = textwrap.dedent(
        f"""
        import os, signal, sys, threading, time
        from pathlib import Path
        from specbench.process.managed import ManagedProcess
        log = Path(sys.argv[1])
        proc = ManagedProcess([sys.executable, "-c", {STUBBORN!r}], log_path=log, grace_s=60)
        proc.start()
        Path(sys.argv[2]).write_text(str(proc.pgid))
        while {STUBBORN_READY!r} not in log.read_text():
            time.sleep(0.02)
        # SIGTERM to ourselves once stop() has signalled the group: inside stop() on a
        # busy machine as on an idle one (a 0.3 s timer could fire before stop()).
        signal_group = proc._signal_group
        def signal_then_terminate_me(sig):
            signal_group(sig)
            if sig == signal.SIGTERM:
                os.kill(os.getpid(), signal.SIGTERM)
        proc._signal_group = signal_then_terminate_me
        proc.stop()
        """
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "s.log"), str(pidfile)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if pidfile.exists():
            pgid = int(pidfile.read_text())
            if group_exists(pgid):  # clean up before failing, never leave it behind
                os.killpg(pgid, signal.SIGKILL)
    assert result.returncode == 128 + 15, result.stderr
    assert_group_gone(read_pid(pidfile))


def test_launch_refuses_a_server_running_another_configuration(tmp_path: Path) -> None:
    """--server-args override the speculative flags; measuring would mislabel every trial."""
    pidfile = tmp_path / "pid"
    backend = ServerBackend(
        load_target("minimax-m2.7"),
        launch_cmd=serve_sim_launch_cmd(pidfile),
        server_args=["--speculative-num-steps", "5"],
        ready_timeout_s=60,
    )
    with (
        pytest.raises(
            ServerError,
            match=r"is not \(3,4,8\) as asked: speculative_num_steps is 5, not 3.*--server-args",
        ),
        backend.session(CONFIG, log_path=tmp_path / "s.log"),
    ):
        pytest.fail("must not yield")
    assert_group_gone(read_pid(pidfile))
    assert live_process_groups() == []


def _run(mode: str, **load: object) -> list:  # type: ignore[type-arg]
    with FaultServer(mode) as server:
        return HttpSession(server.endpoint, CONFIG).run(
            small_load(n=2, concurrency=2, warmup_requests=0, **load)
        )


def test_a_request_sglang_aborted_is_an_error() -> None:
    records = _run("abort")
    assert [r.error for r in records] == ["aborted by the server: KV cache is full"] * 2
    assert all(r.e2e_ms is None for r in records)


def test_a_long_cumulative_chunk_is_read() -> None:
    """A 600 KB SSE line (60k tokens of cumulative text and ids) exceeded aiohttp's
    default read buffer (256 KiB limit in aiohttp 3.14, 64 KiB in older releases)."""
    records = _run("long", max_new_tokens=60_000)
    assert all(r.ok and r.completion_tokens == 60_000 for r in records), records[0].error


def test_a_chunk_that_is_not_an_object_fails_only_its_request() -> None:
    records = _run("not-object")
    assert all(r.error is not None and "malformed response" in r.error for r in records)


def test_spec_counters_only_in_the_final_chunk_are_read() -> None:
    records = _run("final-spec")
    assert all(r.ok and r.spec_verify_ct == 2 and r.tau == 2.0 for r in records)
    assert all(r.spec_accept_length == 2.0 for r in records)


def test_serve_sim_streams_like_current_sglang() -> None:
    """Cumulative text and output ids in every chunk; the speculative counters only in
    the finishing one (SGLang's tokenizer manager adds them when a request finishes)."""
    with in_thread_serve_sim(num_steps=3, topk=4, num_draft_tokens=8, time_scale=0.05) as ep:
        body = {"text": "hello", "sampling_params": {"max_new_tokens": 12}, "stream": True}
        req = urllib.request.Request(
            ep + "/generate",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            lines = [line.strip() for line in resp if line.startswith(b"data:")]
    assert lines[-1] == b"data: [DONE]"
    chunks = [json.loads(line[len(b"data:") :]) for line in lines[:-1]]
    assert len(chunks) >= 2
    for chunk in chunks:
        n = chunk["meta_info"]["completion_tokens"]
        assert len(chunk["text"].split()) == n and len(chunk["output_ids"]) == n
    assert all("spec_verify_ct" not in c["meta_info"] for c in chunks[:-1])
    final = chunks[-1]["meta_info"]
    assert final["finish_reason"] == {"type": "length", "length": 12}
    assert final["spec_accept_length"] == pytest.approx(12 / final["spec_verify_ct"])
    assert final["spec_accept_token_num"] == 12 - final["spec_verify_ct"]
    assert final["spec_draft_token_num"] == final["spec_verify_ct"] * 7
