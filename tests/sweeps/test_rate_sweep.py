"""Request-rate loads through a whole sweep on the simulator: rows per configuration and
rate in results.json and trials.csv, paired send times, goodput, the SLO-rate and its
decision, and resume refusing other rates."""

from __future__ import annotations

import json
import shlex
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from specbench.errors import BadInputError
from specbench.rundir.layout import RunDirectory
from specbench.rundir.records import read_records
from specbench.spec_config import SpecConfig
from specbench.sweeps.measure_rates import RATE_REQUESTS_FILE
from specbench.sweeps.rate_plan import MIN_RATE_WINDOW_S
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options, run_cli

CONFIGS = (SpecConfig(2, 1, 3), SpecConfig(4, 4, 8))


def _rate_options(out: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "strategy": "fixed",
        "configs": CONFIGS,
        "concurrencies": (1,),
        "load": "rate:1,4",
        **overrides,
    }
    return fast_options(out, **values)


def _rates(out: Path) -> dict[str, Any]:
    results = json.loads((out / "results.json").read_text())
    rates: dict[str, Any] = results["rates"]
    return rates


def test_every_configuration_is_measured_at_every_rate_with_the_same_send_times(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    run_sweep(_rate_options(out, arrival="poisson"))
    rates = _rates(out)
    measured = {(r["config_key"], r["load"]) for r in rates["rows"]}
    keys = ("baseline", *(c.key for c in CONFIGS))
    assert measured == {(k, load) for k in keys for load in ("1 req/s", "4 req/s")}
    for row in rates["rows"]:
        assert row["requests"] == max(32, int(row["rate_per_s"] * MIN_RATE_WINDOW_S))
        assert row["completed"] == row["requests"] and row["failed"] == 0
        for name in ("ttft_ms_p99", "tpot_ms_p50", "output_tokens_per_s", "achieved_rate_per_s"):
            assert isinstance(row[name], float) and row[name] > 0, name
        assert row["goodput_per_s"] is None  # no objectives given
    # Paired: the same due times and prompts for the baseline and every configuration.
    due: dict[tuple[str, str], list[tuple[float | None, str]]] = defaultdict(list)
    for record in read_records(out / RATE_REQUESTS_FILE):
        assert record.load is not None
        due[(record.load, record.config_key)].append((record.due_s, record.prompt_id))
    for load in ("1 req/s", "4 req/s"):
        schedules = [sorted(due[(load, key)], key=lambda d: d[0] or 0.0) for key in keys]
        assert schedules[0] and all(s == schedules[0] for s in schedules)
    # The closed-loop views read only closed-loop requests.
    assert all(r.load is None for r in read_records(out / "requests.jsonl"))

    frame = pd.read_csv(out / "trials.csv")
    rate_rows = frame[frame["load"].notna()]
    assert len(rate_rows) == 6 and rate_rows["concurrency"].isna().all()
    assert {"tpot_ms_p99", "goodput_per_s", "achieved_rate_per_s"} <= set(frame.columns)
    # results.json "trials" keeps the closed-loop rows its readers key by concurrency.
    assert all(
        isinstance(t["concurrency"], int) for t in RunDirectory(out).read_results()["trials"]
    )


def test_with_an_slo_the_pick_per_rate_maximises_goodput(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(_rate_options(out, slo="tpot_p99_ms=1000,ttft_p99_ms=100000"))
    rates = _rates(out)
    assert rates["slo_text"] == "p99 TPOT 1000 ms, p99 TTFT 100000 ms"
    for pick in rates["per_load"]:
        assert pick["by"] == "goodput_per_s"
        at_load = [r for r in rates["rows"] if r["load"] == pick["load"]]
        best = max(r["goodput_per_s"] for r in at_load)
        assert pick["value"] >= best * 0.98
    # Both named rates met the (loose) objectives everywhere: the SLO-rate is their top.
    for entry in rates["slo_rates"]:
        assert entry["rate_per_s"] == 4.0 and entry["at_top"] is True
    assert rates["headline"].startswith("within p99 TPOT 1000 ms, p99 TTFT 100000 ms: ")
    assert "no speculation at least 4 req/s" in rates["headline"]


def test_a_rate_sweep_bisects_each_configurations_slo_rate(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(_rate_options(out, load="sweep:3", slo="tpot_p99_ms=40"))
    rates = _rates(out)
    saturation = rates["saturation_per_s"]
    assert isinstance(saturation, float) and saturation > 0
    loads = sorted({r["rate_per_s"] for r in rates["rows"]})
    assert loads == pytest.approx([saturation / 3, 2 * saturation / 3, saturation])
    entries = {e["config_key"]: e for e in rates["slo_rates"]}
    assert set(entries) == {"baseline", *(c.key for c in CONFIGS)}
    for entry in entries.values():
        if not entry["at_top"]:
            assert entry["method"] == "bisection"
            low, high = entry["rate_per_s"], entry["high_per_s"]
            assert high is not None and low < high
            assert high - low <= 0.03 * high  # stopped at the bisection's tolerance
    assert rates["recommended"] in {c.key for c in CONFIGS}
    assert rates["headline"].startswith("within p99 TPOT 40 ms: no speculation ")


def test_a_resume_with_other_rates_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(_rate_options(out))
    with pytest.raises(BadInputError, match="rate loads or SLOs differ"):
        run_sweep(_rate_options(out, load="rate:1,8"))


def test_load_concurrency_is_the_concurrencies(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_sweep(_rate_options(out, load="concurrency:1,2"))
    assert RunDirectory(out).read_manifest().concurrencies == [1, 2]
    assert "rates" not in json.loads((out / "results.json").read_text())


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"load": None, "slo": "tpot_p99_ms=50"}, "--slo applies to request-rate loads"),
        ({"load": None, "arrival": "constant"}, "--arrival applies to request-rate loads"),
        ({"load": "concurrency:1", "max_concurrency": 4}, "--max-concurrency applies to"),
        ({"load": "rate:1,1"}, "--load rate: 1 is given twice"),
        ({"load": "rate:0"}, "--load rate must be >= 0.001"),
        ({"slo": "foo_p99_ms=5"}, "--slo: unknown latency 'foo'"),
        ({"max_concurrency": 10**6}, "--max-concurrency must be <= 4096"),
    ],
)
def test_bad_rate_options_are_one_line(
    tmp_path: Path, overrides: dict[str, Any], needle: str
) -> None:
    out = tmp_path / "run"
    with pytest.raises(BadInputError, match=needle.replace("(", r"\(")):
        run_sweep(_rate_options(out, **overrides))
    assert not out.exists()


def test_launched_serve_sim_runs_rate_loads_open_loop(tmp_path: Path) -> None:
    # 3-4-8, not a chain of 2: with 16 tokens serve-sim's 2-1-3 can claim 16 tokens in
    # 5 verify steps (the prefill's token is not a step), which the claim check refuses.
    launch = (
        f"{shlex.quote(sys.executable)} -m specbench serve-sim --target minimax-m2.7 "
        "--hardware h200-nvlink --time-scale 0.1 --sglang-args {args}"
    )
    out = tmp_path / "launched"
    result = run_cli(
        ["sweep", "--backend", "sglang", "--launch-cmd", launch, "--strategy", "fixed",
         "--config", "3,4,8", "--hardware", "h200-nvlink", "--ready-timeout", "60",
         "--num-prompts", "3", "--max-new-tokens", "16", "--load", "rate:1",
         "--slo", "tpot_p99_ms=100", "--out", str(out), "--no-report"],
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rates = _rates(out)
    assert {r["config_key"] for r in rates["rows"]} == {"baseline", "3-4-8"}
    errors = [r.error for r in read_records(out / RATE_REQUESTS_FILE) if r.error]
    for row in rates["rows"]:
        assert row["completed"] == row["requests"] == 32, errors
        assert row["sent_rate_per_s"] >= 0.95
        assert row["tpot_ms_p50"] > 0 and row["goodput_per_s"] > 0
    assert RunDirectory(out).read_manifest().concurrencies == [1]
