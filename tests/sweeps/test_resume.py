"""Resume after a crash: failed trials retried on request, finished requests of a crashed
load kept, results written after every trial, a stopped worker no rival, and no server
left running after specbench is SIGKILLed."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import optuna

from specbench.harness.backend import LoadFailedError, LoadSpec, Session
from specbench.process.liveness import ProcessIdentity
from specbench.process.server_pidfile import SERVERS_DIR
from specbench.rundir.records import RequestRecord, read_records
from specbench.spec_config import SpecConfig, config_key
from specbench.sweeps.runner import run_sweep
from specbench.sweeps.search import ATTR_CONFIG, ConfigSearch
from specbench.sweeps.space import parse_space
from specbench.sweeps.storage import ATTR_WORKER
from tests.support.servers import group_exists
from tests.support.sweeps import ScriptedBackend, fast_options, truth_model

CONFIGS = (SpecConfig(3, 4, 8), SpecConfig(2, 1, 3))


def test_retry_failed_measures_a_crashed_configuration_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    crashed = ScriptedBackend(truth_model(), fail=["2-1-3"])
    run_sweep(fast_options(out, strategy="fixed", configs=CONFIGS, backend_instance=crashed))
    healthy = ScriptedBackend(truth_model())
    outcome = run_sweep(
        fast_options(
            out, strategy="fixed", configs=CONFIGS, backend_instance=healthy, retry_failed=True
        )
    )
    assert healthy.opened == ["2-1-3"]  # only the failed one, and once
    rows = outcome.trials[outcome.trials["config_key"] == "2-1-3"]
    assert len(rows) == 2 and (rows["state"] == "complete").all()
    assert outcome.results["study"]["measured"] == 2


class _CrashingSession(Session):
    """Finishes two requests of the load, then the server dies."""

    def __init__(self, inner: Session) -> None:
        self.inner = inner
        self.config = inner.config
        self.endpoint = None

    def run(
        self, load: LoadSpec, progress: object = None, stalls: object = None
    ) -> list[RequestRecord]:
        finished = self.inner.run(load)[:2]
        raise LoadFailedError("the server stopped accepting connections", "oom", finished)

    def flush_cache(self) -> None:
        self.inner.flush_cache()

    def server_info(self) -> dict[str, object]:
        return self.inner.server_info()


class _CrashOn(ScriptedBackend):
    def __init__(self, crash: str) -> None:
        super().__init__(truth_model())
        self.crash = crash

    def session(self, config: SpecConfig | None, *, log_path: Path):  # type: ignore[no-untyped-def]
        return self._crashing(config, log_path)

    @contextlib.contextmanager
    def _crashing(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        with super().session(config, log_path=log_path) as session:
            yield _CrashingSession(session) if config_key(config) == self.crash else session


def test_finished_requests_of_a_crashed_load_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outcome = run_sweep(
        fast_options(out, strategy="fixed", configs=CONFIGS, backend_instance=_CrashOn("2-1-3"))
    )
    failed = outcome.trials[outcome.trials["config_key"] == "2-1-3"]
    assert (failed["state"] == "failed").all()
    kept = [r for r in read_records(out / "requests.jsonl") if r.config_key == "2-1-3"]
    assert len(kept) == 2 and all(r.ok for r in kept)


class _ReadsResults(ScriptedBackend):
    """Looks at results.json each time a speculative server starts."""

    def __init__(self, out: Path) -> None:
        super().__init__(truth_model())
        self.out = out
        self.seen: list[list[str]] = []

    def session(self, config: SpecConfig | None, *, log_path: Path):  # type: ignore[no-untyped-def]
        if config is not None and len(self.opened) > 1:
            results = json.loads((self.out / "results.json").read_text())
            self.seen.append(
                [r["config_key"] for r in results["trials"] if r["state"] == "complete"]
            )
        return super().session(config, log_path=log_path)


def test_results_are_written_after_the_first_trial(tmp_path: Path) -> None:
    out = tmp_path / "run"
    backend = _ReadsResults(out)
    run_sweep(fast_options(out, strategy="fixed", configs=CONFIGS, backend_instance=backend))
    assert backend.seen and "3-4-8" in backend.seen[0]


def test_a_stopped_worker_is_no_rival_on_resume() -> None:
    study = optuna.create_study(direction="maximize")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial = study.ask()
    trial.set_user_attr(ATTR_WORKER, ProcessIdentity.of(dead.pid).token())
    trial.set_user_attr(ATTR_CONFIG, "3-4-8")
    study.tell(trial, 1.2)
    assert study.trials[0].datetime_complete is not None
    assert datetime.now() - study.trials[0].datetime_complete < (datetime.now() - datetime.min)
    me = ProcessIdentity.current().token()
    search = ConfigSearch(study, parse_space("num_steps=3,topk=4,num_draft_tokens=8"), "optuna",
                          sampler_name="tpe", worker=me)  # fmt: skip
    assert not search._others_active()
    live = study.ask()
    live.set_user_attr(ATTR_WORKER, f"{ProcessIdentity.current().host}:1")  # init: alive
    assert search._others_active()


# -- no orphan after SIGKILL ----------------------------------------------------------------
def _launch_sweep(out: Path) -> subprocess.Popen[bytes]:
    launch = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
        f"--hardware h200-nvlink --time-scale 0.05 --sglang-args {{args}}"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "specbench", "sweep", "--backend", "sglang", "--launch-cmd", launch,
         "--strategy", "fixed", "--config", "3,4,8", "--config", "2,1,3", "--concurrency", "1",
         "--num-prompts", "3", "--max-new-tokens", "2000", "--hardware", "h200-nvlink",
         "--no-report", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _server_record(out: Path, log: str, timeout_s: float = 90.0) -> dict[str, object]:
    """The pidfile of the running server once the server logging to ``log`` is ready."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ValueError, OSError):
            if "ready to roll" in (out / "logs" / log).read_text():
                (path,) = (out / SERVERS_DIR).glob("*.json")
                return dict(json.loads(path.read_text()))
        time.sleep(0.1)
    raise AssertionError(f"the server of {log} never became ready")


def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while group_exists(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigkilled_sweep_leaves_no_server(tmp_path: Path) -> None:
    """pdeathsig: the guardian takes the server group down as soon as specbench dies."""
    out = tmp_path / "run"
    sweep = _launch_sweep(out)
    # Killed while its second trial's server runs: the first trial is finished.
    record = _server_record(out, "trial-0001-2-1-3.log")
    pgid = int(record["pgid"])  # type: ignore[call-overload]
    assert group_exists(pgid)
    sweep.kill()
    sweep.wait()
    assert _wait_group_gone(pgid, 20.0), "the server outlived the SIGKILLed sweep"
    # results.json was written after the first trial: the report renders.
    results = json.loads((out / "results.json").read_text())
    assert [r["state"] for r in results["trials"] if r["config_key"] == "3-4-8"] == ["complete"]
    report = subprocess.run([sys.executable, "-m", "specbench", "report", str(out)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert (out / "report.html").exists()


def test_resume_reaps_a_server_whose_guardian_died_too(tmp_path: Path) -> None:
    """Where nothing signals the server (guardian killed with specbench), the pidfile
    lets the resumed sweep find and stop the orphaned group."""
    out = tmp_path / "run"
    sweep = _launch_sweep(out)
    record = _server_record(out, "baseline.log")
    pgid = int(record["pgid"])  # type: ignore[call-overload]
    os.kill(pgid, signal.SIGKILL)  # the guardian (group leader) first, then specbench
    sweep.kill()
    sweep.wait()
    time.sleep(0.5)
    assert group_exists(pgid), "the orphaned server should still run before the resume"
    resumed = _launch_sweep(out)
    try:
        assert _wait_group_gone(pgid, 30.0), "the resumed sweep did not reap the orphan"
    finally:
        resumed.kill()
        resumed.wait()
