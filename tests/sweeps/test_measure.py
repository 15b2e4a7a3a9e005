"""What a sweep records about each measurement: intervals, tau's source, re-measured and
pruned loads, the servers' own description, and the options it refuses."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from specbench.errors import BadInputError
from specbench.harness.acceptance_stats import TAU_COUNTERS, load_acceptance
from specbench.harness.backend import LoadSpec, ProgressCallback, Session, StallCallback
from specbench.harness.sim_backend import SimBackend
from specbench.rundir.acceptance import read_acceptance
from specbench.rundir.layout import RunDirectory
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options, run_cli, truth_model

SMALL = ["--num-prompts", "3", "--max-new-tokens", "16", "--concurrency", "1,2", "--no-report"]
SERVE_SIM = (
    f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
    "--hardware h200-nvlink --time-scale 0.02 --sglang-args {args}"
)


def _launch(tmp_path: Path, out: Path, *extra: str) -> Any:
    return run_cli(
        ["sweep", "--backend", "sglang", "--launch-cmd", SERVE_SIM, "--strategy", "fixed",
         "--config", "3,4,8", "--hardware", "h200-nvlink", "--ready-timeout", "60",
         "--out", str(out), *SMALL, *extra],
        cwd=tmp_path, timeout=180,
    )  # fmt: skip


def test_launched_servers_are_equal_checked_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _launch(tmp_path, out)
    assert result.returncode == 0, result.stderr
    assert "estimated wall time" in result.stderr
    assert "launch (measured)" in result.stderr
    run = RunDirectory(out)
    infos = {p.stem: json.loads(p.read_text()) for p in run.server_info_dir.glob("*.json")}
    assert set(infos) == {"baseline", "trial-0000-3-4-8"}
    for info in infos.values():
        # Both servers launched with the sweep's highest concurrency as their batch limit.
        assert (info["max_running_requests"], info["cuda_graph_max_bs_decode"]) == (2, 2)
        assert info["version"].startswith("specbench-serve-sim")
    assert infos["trial-0000-3-4-8"]["speculative_draft_model_path"] == "Lorbus/MiniMax-M2.7-EAGLE3"
    assert run.read_manifest().extra["config_check"] == "on"
    spec = run.read_trials().query("config_key == '3-4-8'")
    assert (spec["speedup_ci_low"] <= spec["speedup"]).all()
    assert (spec["speedup"] <= spec["speedup_ci_high"]).all()
    assert (spec["tau_source"] == "per_request").all()


def test_a_server_that_is_not_the_one_asked_for_fails_its_trial(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _launch(tmp_path, out, "--server-args", "--speculative-draft-model-path other")
    assert result.returncode == 1
    row = RunDirectory(out).read_trials().query("config_key == '3-4-8'").iloc[0]
    assert row["state"] == "failed"
    assert "speculative_draft_model_path is 'other'" in row["error"]
    # The baseline is checked too: a batch limit other than the sweep's fails it.
    result = _launch(tmp_path, tmp_path / "b", "--server-args", "--max-running-requests 48")
    assert result.returncode == 1
    assert "max_running_requests is 48, not 2" in result.stderr


def test_the_config_check_can_be_skipped_and_the_skip_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ("--server-args", "--max-running-requests 48", "--no-config-check")
    result = _launch(tmp_path, out, *args)
    assert result.returncode == 0, result.stderr
    assert RunDirectory(out).read_manifest().extra["config_check"] == "skipped (--no-config-check)"


@pytest.mark.parametrize("flag", [["--launch-cmd", "srun {cmd}"], ["--server-args", "--x 1"]])
def test_auto_backend_refuses_options_the_simulator_would_ignore(
    tmp_path: Path, flag: list[str]
) -> None:
    result = run_cli(["sweep", "--out", str(tmp_path / "r"), *SMALL, *flag], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "would run SIMULATED" in result.stderr and flag[0] in result.stderr


def test_auto_backend_simulates_at_the_tp_a_memory_advice_names(tmp_path: Path) -> None:
    # A decision that does not fit advises `--tp 8`; the simulator prices that TP, so
    # the advice runs as printed (issue 22 item 2: it exited 2 without --backend sim).
    out = tmp_path / "r"
    result = run_cli(["sweep", "--out", str(out), *SMALL, "--tp", "8"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert RunDirectory(out).read_manifest().hardware["tp"] == 8


def test_every_trial_row_has_a_speedup_interval(tmp_path: Path) -> None:
    outcome = run_sweep(fast_options(tmp_path / "run", trials=3))
    spec = outcome.trials.query("config_key != 'baseline' and state == 'complete'")
    assert len(spec) >= 3
    assert spec["speedup_ci_low"].map(math.isfinite).all()
    assert (spec["speedup_ci_low"] <= spec["speedup"]).all()
    assert (spec["speedup"] <= spec["speedup_ci_high"]).all()
    assert (spec["speedup_ci_high"] - spec["speedup_ci_low"] < 0.5).all()
    first = outcome.results["trials"][-1]
    assert {"speedup_ci_low", "speedup_ci_high", "tau_source", "remeasured"} <= set(first)


def test_auto_configuration_follows_the_installed_sglang(tmp_path: Path) -> None:
    outcome = run_sweep(fast_options(tmp_path / "run", trials=8))
    auto = outcome.trials.query("source == 'sglang-auto'")
    # SGLang 0.5.23 (or newer, when none is installed) picks (3, 1, 4) for MiniMax-M2.
    assert set(auto["config_key"]) == {"3-1-4"}
    assert outcome.run_dir.read_manifest().extra["engine_default_config"] == "3-1-4"


def test_pruning_stops_clearly_worse_configurations_after_their_first_load(
    tmp_path: Path,
) -> None:
    options = fast_options(
        tmp_path / "run",
        strategy="fixed",
        configs=(SpecConfig(4, 4, 7), SpecConfig(1, 8, 9)),
        num_prompts=8,
        prune=True,
    )
    frame = run_sweep(options).trials
    worse = frame.query("config_key == '1-8-9'").set_index("concurrency")
    assert worse.loc[1, "state"] == "complete"
    assert worse.loc[4, "state"] == "pruned"
    assert "clearly below 4-4-7" in worse.loc[4, "prune_reason"]
    assert (frame.query("config_key == '4-4-7'")["state"] == "complete").all()
    # Off by default for simulated runs: finishing costs no GPU time.
    frame = run_sweep(dataclasses.replace(options, out=tmp_path / "again", prune=None)).trials
    assert (frame["state"] == "complete").all()


class _StallOnce(SimBackend):
    """The simulator, except that the first load of every server has one stalled request."""

    @contextlib.contextmanager
    def _session(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        with super()._session(config, log_path) as session:
            run = session.run
            seen: set[int] = set()

            def stalled(
                load: LoadSpec,
                progress: ProgressCallback | None = None,
                stalls: StallCallback | None = None,
            ) -> list[RequestRecord]:
                records = run(load, progress, stalls)
                if load.concurrency not in seen:
                    seen.add(load.concurrency)
                    records[0].ttft_ms = 50_000.0
                    assert records[0].e2e_ms is not None
                    records[0].e2e_ms += 50_000.0
                return records

            session.run = stalled  # type: ignore[method-assign]
            yield session


def test_a_stalled_load_is_measured_again(tmp_path: Path) -> None:
    options = fast_options(
        tmp_path / "run",
        strategy="fixed",
        configs=(SpecConfig(3, 4, 8),),
        backend_instance=_StallOnce(truth_model(), seed=0),
    )
    frame = run_sweep(options).trials
    assert (frame["remeasured"] == 1).all()
    assert not frame["noise_reason"].str.contains("TTFT tail").any()
    no_repeat = dataclasses.replace(options, out=tmp_path / "again", repeats=0)
    frame = run_sweep(no_repeat).trials
    assert frame["noise_reason"].str.contains("TTFT tail").all()


class _NoPerRequestStats(SimBackend):
    """A server (or proxy) that drops the per-request counters but keeps its average."""

    average = 2.5

    @contextlib.contextmanager
    def _session(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        with super()._session(config, log_path) as session:
            run, info = session.run, session.server_info

            def stripped(
                load: LoadSpec,
                progress: ProgressCallback | None = None,
                stalls: StallCallback | None = None,
            ) -> list[RequestRecord]:
                records = run(load, progress, stalls)
                for record in records:
                    record.spec_verify_ct = None
                    record.spec_accept_length = None
                return records

            def with_average() -> dict[str, Any]:
                average = self.average
                return {**info(), "internal_states": [{"avg_spec_accept_length": average}]}

            session.run = stripped  # type: ignore[method-assign]
            session.server_info = with_average  # type: ignore[method-assign]
            yield session


def test_missing_per_request_stats_fall_back_to_the_servers_average_labelled(
    tmp_path: Path,
) -> None:
    options = fast_options(
        tmp_path / "run",
        strategy="fixed",
        configs=(SpecConfig(3, 4, 8),),
        backend_instance=_NoPerRequestStats(truth_model(), seed=0),
        repeats=0,
    )
    spec = run_sweep(options).trials.query("config_key == '3-4-8'")
    assert (spec["tau"] == 2.5).all()
    assert (spec["tau_source"] == "server_average").all()
    assert spec["noisy"].all()
    assert spec["noise_reason"].str.contains("no per-request acceptance stats").all()


def test_an_impossible_server_average_is_no_tau_and_the_run_stays_readable(
    tmp_path: Path,
) -> None:
    backend = _NoPerRequestStats(truth_model(), seed=0)
    backend.average = 0.5
    options = fast_options(
        tmp_path / "run",
        strategy="fixed",
        configs=(SpecConfig(3, 4, 8),),
        backend_instance=backend,
        repeats=0,
    )
    spec = run_sweep(options).trials.query("config_key == '3-4-8'")
    assert spec["tau"].isna().all() and (spec["tau_server"] == 0.5).all()
    assert spec["noise_reason"].str.contains("outside 1 <= tau").all()
    # Stored as no tau, the run is one that report and gate read (a tau of 0.5 is not).
    assert RunDirectory(tmp_path / "run").read_results()["trials"]


def test_repeats_and_launch_time_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--repeats"):
        run_sweep(fast_options(tmp_path / "a", repeats=99))
    with pytest.raises(BadInputError, match="--launch-time-estimate"):
        run_sweep(fast_options(tmp_path / "b", launch_time_estimate_s=0.0))


class _EngineCountersOnly(SimBackend):
    """An engine with server-wide acceptance counters and no per-request stats (vLLM
    without ``--per-request-spec-decode-metrics``)."""

    @contextlib.contextmanager
    def _session(self, config: SpecConfig | None, log_path: Path) -> Iterator[Session]:
        with super()._session(config, log_path) as session:
            run = session.run

            def counted(
                load: LoadSpec,
                progress: ProgressCallback | None = None,
                stalls: StallCallback | None = None,
            ) -> list[RequestRecord]:
                records = run(load, progress)
                for record in records:
                    record.spec_verify_ct = None
                    record.spec_accept_length = None
                counters = {"drafts": 10.0, "accepted": 15.0, "accepted_per_position": [8.0, 7.0]}
                session.last_acceptance = load_acceptance(records, counters)
                return records

            session.run = counted  # type: ignore[method-assign]
            yield session


def test_engine_counters_give_tau_when_requests_carry_no_stats(tmp_path: Path) -> None:
    options = fast_options(
        tmp_path / "run",
        strategy="fixed",
        configs=(SpecConfig(3, 4, 8),),
        backend_instance=_EngineCountersOnly(truth_model(), seed=0),
        repeats=0,
    )
    spec = run_sweep(options).trials.query("config_key == '3-4-8'")
    assert (spec["tau"] == 2.5).all()
    assert (spec["tau_source"] == TAU_COUNTERS).all()
    assert not spec["noise_reason"].fillna("").str.contains("acceptance stats").any()
    stored = read_acceptance(RunDirectory(tmp_path / "run"))
    assert {row["tau"] for row in stored} == {2.5}
