"""--load ramp and --adaptive through a whole sweep on the simulator (sweeps/ramp.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from specbench.errors import BadInputError
from specbench.harness.adaptive_config import SGLANG_ADAPTIVE, SGLANG_DEFAULT_CONFIG
from specbench.harness.loads import RampLoad, parse_load
from specbench.rundir.ramp import RAMP_FILE, ramp_answer
from specbench.spec_config import SpecConfig
from specbench.sweeps.ramp import RAMP_REPEATS, check_ramp_backend
from specbench.sweeps.runner import run_sweep
from tests.support.sweeps import fast_options, run_cli

CONFIGS = (SpecConfig(2, 1, 3), SpecConfig(3, 1, 4), SpecConfig(3, 4, 8))


def _ramp(out: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((out / RAMP_FILE).read_text())
    return body


def test_adaptive_measures_four_servers_over_every_phase_paired_by_repeat(tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = fast_options(out, strategy="fixed", configs=CONFIGS, concurrencies=(1, 4),
                           ramp=(1, 4, 1), adaptive=True)  # fmt: skip
    run_sweep(options)
    ramp = _ramp(out)
    roles = [c["role"] for c in ramp["candidates"]]
    assert roles == ["baseline", "static", "engine-default", "written"]
    assert ramp["phases"] == [1, 4, 1] and ramp["repeats"] == RAMP_REPEATS
    for cand in ramp["candidates"]:
        assert len(cand["runs"]) == RAMP_REPEATS
        seeds = [r["seed"] for r in cand["runs"]]
        assert len(set(seeds)) == RAMP_REPEATS  # each repeat its own draws...
        for run in cand["runs"]:
            assert [p["concurrency"] for p in run["phases"]] == [1, 4, 1]
            assert all(p["errors"] == 0 and p["completion_tokens"] > 0 for p in run["phases"])
    by_role = {c["role"]: c for c in ramp["candidates"]}
    # ...the same for every candidate (paired), so the baseline's ratio to itself is 1.
    assert [r["seed"] for r in by_role["written"]["runs"]] == seeds
    assert by_role["baseline"]["speedup_ci"] == [1.0, 1.0]
    assert all(p["tau"] is None for p in by_role["baseline"]["phases"])
    # The written tiers speculate where a chain paid (tau above 1) and draft nothing
    # where none did (no tau).
    written = by_role["written"]
    for phase in written["phases"]:
        tier = max(
            (int(k) for k in written["adaptive"] if int(k) <= phase["concurrency"]), default=1
        )
        off = written["adaptive"][str(tier)]["candidate_steps"] == [0]
        assert (phase["tau"] is None) if off else (phase["tau"] > 1.0), phase
    assert by_role["engine-default"]["adaptive"] == SGLANG_DEFAULT_CONFIG
    assert SGLANG_ADAPTIVE.problem(by_role["written"]["adaptive"]) is None
    # The written config is also the file `specbench export` writes into the run.
    assert json.loads((out / "adaptive-sglang.json").read_text()) == by_role["written"]["adaptive"]
    assert set(ramp["written_versus"]) == {"static", "engine-default"}
    # The model's account of each phase beside the measurement.
    for cand in ramp["candidates"]:
        assert [p["concurrency"] for p in cand["predicted"]] == [1, 4, 1]
    assert all(
        p["config"] is None and p["speedup"] == 1.0 for p in by_role["baseline"]["predicted"]
    )
    assert {p["config"] for p in by_role["static"]["predicted"]} == {by_role["static"]["config"]}
    for mean, low, high in ramp["written_versus"].values():
        assert low <= mean <= high
    assert ramp["answer"].startswith("SIMULATED: over the ramp 1-4-1, the written adaptive config")
    assert "than the best static configuration" in ramp["answer"]
    assert "than the engine's default adaptive config" in ramp["answer"]


def test_a_ramp_without_adaptive_compares_no_speculation_and_the_static_pick(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    run_sweep(fast_options(out, strategy="fixed", configs=CONFIGS[:1], ramp=(4, 1)))
    ramp = _ramp(out)
    assert [c["role"] for c in ramp["candidates"]] == ["baseline", "static"]
    assert ramp["answer"].startswith(
        "SIMULATED: over the ramp 4-1, best static 2-1-3 gives the most"
    )


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        ([1.05, 1.02, 1.08], "gives 5.0% more output tokens/s (95% CI +2.0% to +8.0%)"),
        ([0.95, 0.92, 0.98], "gives 5.0% fewer output tokens/s"),
        ([1.01, 0.99, 1.03], "gives no more output tokens/s than the best static configuration 2-1-3 (+1.0%"),
    ],
)  # fmt: skip
def test_the_answer_says_more_fewer_or_within_noise(ratio: list[float], words: str) -> None:
    body = {
        "simulated": False,
        "phases": [1, 8],
        "candidates": [{"role": "static", "config": "2-1-3"}, {"role": "written"}],
        "written_versus": {"static": ratio},
    }
    assert words in ramp_answer(body)


def test_ramp_loads_parse_and_bad_ones_are_one_line() -> None:
    assert parse_load("ramp:1,8,32,8,1") == [RampLoad((1, 8, 32, 8, 1))]
    for text, needle in (("ramp:8", "at least two"), ("ramp:1,2.5", "not a whole number"),
                         ("ramp:0,1", "--concurrency"), ("ramp:", "comma-separated")):  # fmt: skip
        with pytest.raises(BadInputError, match=needle):
            parse_load(text)


def test_a_ramp_on_an_attached_endpoint_is_refused_before_anything_runs() -> None:
    attached = SimpleNamespace(attached=True, seeded_session=None)
    for backend in (object(), attached):
        ctx: Any = SimpleNamespace(
            options=SimpleNamespace(ramp=(1, 8), adaptive=False), backend=backend
        )
        with pytest.raises(BadInputError, match="not with --endpoint"):
            check_ramp_backend(ctx)


def test_the_cli_ramp_measures_its_phases_and_prints_the_answer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["sweep", "--strategy", "fixed", "--config", "2,1,3", "--config", "3,4,8",
            "--num-prompts", "4", "--max-new-tokens", "24", "--load", "ramp:1,4,1",
            "--adaptive", "--out", str(out)]  # fmt: skip
    done = run_cli(args, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "over the ramp 1-4-1, the written adaptive config" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["concurrencies"] == [1, 4]  # the ramp's phases, searched first
    html = (out / "report.html").read_text()
    assert 'id="adaptive"' in html
    assert (
        "--speculative-adaptive-config" in html and "num_speculative_tokens_per_batch_size" in html
    )
