"""Calibration: fit acceptance on one chain length, predict the others; the profile file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specbench.errors import BadInputError, FileFormatError
from specbench.model import PerformanceModel, load_hardware, load_target
from specbench.model.acceptance import DomainAcceptance, simulate_need, tau_from_need
from specbench.model.calibrate import (
    ChainCounts,
    DomainTau,
    fit_acceptance,
    fit_chain,
    prediction_intervals,
)
from specbench.model.draft_profile import load_draft_profile, write_draft_profile
from specbench.spec_config import SpecConfig

#: The "true" draft of the synthetic runs: not the preset's, so the fit has work to do.
TRUE = DomainAcceptance(confidence_mu=1.2, confidence_sigma=1.2, agreement=0.9, depth_decay=0.95)


def _measured_chain(k: int, drafts: int = 20_000, seed: int = 123) -> ChainCounts:
    """Per-position counters of a chain of k drafts, drawn from the true process."""
    need = simulate_need(TRUE, 1, drafts, seed, "measured")
    accepted = tau_from_need(need, k, k + 1) - 1
    return ChainCounts(drafts, tuple(float((accepted >= i).sum()) for i in range(1, k + 1)))


def _fitted_model(counts: list[ChainCounts]) -> PerformanceModel:
    target = load_target("llama-3.1-8b")
    profile = fit_acceptance(target, counts, domain="chat").profile
    return PerformanceModel(profile.apply(target), load_hardware("h100-nvlink", 1), samples=4000)


def test_fit_on_k2_predicts_k1_3_4_within_5_percent() -> None:
    model = _fitted_model([_measured_chain(2)])
    for k in (1, 3, 4):
        measured = _measured_chain(k, seed=7).mean_accept_length  # an independent run
        predicted = model.expected_tau(SpecConfig(k, 1, k + 1), "chat")
        assert predicted == pytest.approx(measured, rel=0.05), k


def test_fit_recovers_the_true_rates() -> None:
    rate, decay = fit_chain([_measured_chain(2), _measured_chain(4, seed=5)])
    true_rate = TRUE.chain_acceptance(1)[0]
    assert rate == pytest.approx(true_rate, rel=0.03)
    assert decay == pytest.approx(TRUE.depth_decay, abs=0.03)


def test_real_per_position_shape_fits_within_5_percent() -> None:
    # vllm-project/vllm PR #24243 (MiniCPM3 + EAGLE-3, RTX 4090, batch 1): acceptance rate
    # at token 0..4 of 0.57, 0.34, 0.21, 0.14, 0.10 over 8914 drafts.
    counts = ChainCounts.from_vllm(
        8914, {str(i): 8914 * r for i, r in enumerate((0.57, 0.34, 0.21, 0.14, 0.10))}
    )
    result = fit_acceptance(load_target("llama-3.1-8b"), [counts], domain="chat")
    chain = result.error["chains"][0]
    assert chain["fitted_accept_length"] == pytest.approx(2.36, rel=0.05)
    assert result.error["max_abs_relative_error"] < 0.05


def test_domain_taus_set_each_domain_level() -> None:
    target = load_target("llama-3.1-8b")
    result = fit_acceptance(
        target,
        [_measured_chain(2)],
        domain="chat",
        domain_taus=[
            DomainTau("math", SpecConfig(3, 1, 4), 2.9),
            DomainTau("code", SpecConfig(3, 4, 8), 3.2),
        ],
        samples=1500,
    )
    for row in result.error["domain_taus"]:
        assert row["fitted"] == pytest.approx(row["measured"], abs=0.02), row
    acc = dict(result.profile.acceptance)
    assert acc["chat"].depth_decay == pytest.approx(result.depth_decay)


def test_histogram_and_vllm_counters_agree() -> None:
    # 100 verify steps: 40 accepted nothing, 35 one draft, 25 both.
    a = ChainCounts.from_histogram([40, 35, 25])
    b = ChainCounts.from_vllm(100, {0: 60, 1: 25})
    assert a == b
    assert a.mean_accept_length == pytest.approx(1.85)


@pytest.mark.parametrize(
    ("drafts", "per_position"),
    [(100, (60.0, 70.0)), (100, (120.0,)), (100, ()), (0, (0.0,))],
)
def test_impossible_counts_are_bad_input(drafts: int, per_position: tuple[float, ...]) -> None:
    with pytest.raises(BadInputError):
        ChainCounts(drafts, per_position)


def test_profile_file_round_trips_into_predict(tmp_path: Path) -> None:
    target = load_target("llama-3.1-8b")
    result = fit_acceptance(target, [_measured_chain(2)], domain="chat", name="my-run")
    path = tmp_path / "draft.json"
    write_draft_profile(path, result.profile)
    data = json.loads(path.read_text())
    assert data["schema_version"] and data["kind"] == "specbench.draft-profile"
    assert data["fit"]["error"]["max_abs_relative_error"] < 0.01
    loaded = load_draft_profile(str(path))
    assert loaded.acceptance == result.profile.acceptance
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "specbench",
            "predict",
            "--target",
            "llama-3.1-8b",
            "--hardware",
            "h100-nvlink",
            "--config",
            "3,1,4",
            "--concurrency",
            "1",
            "--domain",
            "chat",
            "--draft-profile",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["draft_profile"] == "my-run"
    expected = 1.0 + float(np.sum(dict(loaded.acceptance)["chat"].chain_acceptance(3)))
    assert payload["rows"][0]["tau"] == pytest.approx(expected, rel=0.03)


def test_malformed_profile_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": "1.0",
                "name": "x",
                "target": "t",
                "algorithm": "EAGLE3",
                "sources": [],
                "acceptance": {},
            }
        )
    )
    with pytest.raises(FileFormatError, match=r"bad\.json: field 'acceptance\.chat'"):
        load_draft_profile(str(path))


def _flat_chain(k: int, drafts: int, rate: float, rng: np.random.Generator) -> ChainCounts:
    """A draft whose acceptance does not fall with depth (like the tiny EAGLE3 head)."""
    reached, accepted = drafts, []
    for _ in range(k):
        reached = int(rng.binomial(reached, rate))
        accepted.append(float(reached))
    return ChainCounts(drafts, tuple(accepted))


def test_the_prediction_interval_covers_reruns_of_an_extrapolated_chain() -> None:
    """A k = 2 fit at ~330 drafts puts k = 4 anywhere in a few percent (the decay's error
    times six): the 95% interval must hold about 95% of independent k = 4 measurements,
    and be narrow enough to say something."""
    target, rng = load_target("tiny-llama"), np.random.default_rng(11)
    covered, widths = 0, []
    for seed in range(24):
        fit = [_flat_chain(2, 330, 0.77, rng)]
        measured = {k: _flat_chain(k, 330, 0.77, rng) for k in (2, 4)}
        measured[2] = fit[0]
        intervals = prediction_intervals(target, fit, measured, domain="chat", seed=seed)
        low, high = intervals[4]
        covered += low <= measured[4].mean_accept_length <= high
        widths.append((high - low) / measured[4].mean_accept_length)
        assert intervals[2][0] <= fit[0].mean_accept_length <= intervals[2][1]
    assert covered >= 20, covered  # 95% nominal: 20 of 24 is the binomial 1% tail
    assert float(np.median(widths)) < 0.25, widths


def test_the_prediction_interval_narrows_with_more_drafts() -> None:
    target, rng = load_target("tiny-llama"), np.random.default_rng(3)
    width = {}
    for drafts in (300, 30_000):
        fit = [_flat_chain(2, drafts, 0.77, rng)]
        low, high = prediction_intervals(
            target, fit, {4: _flat_chain(4, drafts, 0.77, rng)}, domain="chat"
        )[4]
        width[drafts] = high - low
    assert width[30_000] < width[300] / 5  # sqrt(100) = 10 in theory
