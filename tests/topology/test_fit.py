"""Alpha-beta fit and the nccl-tests bandwidth definitions."""

from __future__ import annotations

import random

import pytest

from specbench.topology import AlphaBetaFit, fit_all, fit_alpha_beta
from specbench.topology.collectives import make_row

SIZES = [2048 * 4**k for k in range(9)] + [2**28]


def rows_for(alpha_us: float, gbps: float, noise: float = 0.0, seed: int = 0, ws: int = 4):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    out = []
    for n in SIZES:
        t_us = (alpha_us + n / (gbps * 1e3)) * (1 + rng.uniform(-noise, noise))
        out.append(make_row("nccl", "default", ws, n, t_us / 1e6, 10))
    return out


def test_busbw_follows_nccl_tests() -> None:
    r = make_row("nccl", "default", 4, 2**20, 1e-3, 10)
    assert r.latency_us == pytest.approx(1000.0)
    assert r.algbw_gbps == pytest.approx(2**20 / 1e-3 / 1e9)
    assert r.busbw_gbps == pytest.approx(r.algbw_gbps * 1.5)
    assert make_row("gloo", "cpu", 2, 2**20, 1e-3, 1).busbw_gbps == pytest.approx(
        2**20 / 1e-3 / 1e9
    )


def test_exact_curve_recovered() -> None:
    fit = fit_alpha_beta(rows_for(6.0, 150.0))
    assert fit.alpha_us == pytest.approx(6.0, rel=1e-6)
    assert fit.bandwidth_gbps == pytest.approx(150.0, rel=1e-6)
    assert fit.max_rel_err < 1e-9 and fit.r2 == pytest.approx(1.0)
    assert fit.predict_us(2**20) == pytest.approx(6.0 + 2**20 / 150e3)
    assert (fit.backend, fit.mode, fit.world_size, fit.points) == ("nccl", "default", 4, 10)


def test_small_messages_keep_their_alpha_under_noise() -> None:
    # 5% noise on a 256 MiB row is ~90 us, far more than alpha: an absolute-error fit
    # would lose alpha entirely; the relative fit keeps it within a few percent.
    fit = fit_alpha_beta(rows_for(20.0, 3.0, noise=0.05, seed=3))
    assert fit.alpha_us == pytest.approx(20.0, rel=0.1)
    assert fit.bandwidth_gbps == pytest.approx(3.0, rel=0.1)
    assert fit.max_rel_err < 0.12


def test_negative_alpha_is_clamped() -> None:
    rows = [
        make_row("gloo", "cpu", 2, n, t, 5)
        for n, t in ((2048, 1e-6), (2**20, 1e-3), (2**24, 1.7e-2))
    ]
    fit = fit_alpha_beta(rows)
    assert fit.alpha_us >= 0 and fit.bandwidth_gbps > 0


def test_fit_needs_two_sizes_of_one_series() -> None:
    with pytest.raises(ValueError, match="two message sizes"):
        fit_alpha_beta([make_row("gloo", "cpu", 2, 2048, 1e-4, 5)] * 2)
    with pytest.raises(ValueError, match="mix"):
        fit_alpha_beta(
            [
                make_row("gloo", "cpu", 2, 2048, 1e-4, 5),
                make_row("nccl", "default", 2, 4096, 1e-4, 5),
            ]
        )
    fits = fit_all([*rows_for(6.0, 150.0), make_row("gloo", "cpu", 2, 2048, 1e-4, 5)])
    assert [(f.backend, f.mode) for f in fits] == [("nccl", "default")]


def test_json_round_trip() -> None:
    fit = fit_alpha_beta(rows_for(6.0, 150.0))
    assert AlphaBetaFit.from_json(fit.to_json()) == fit


def test_a_fit_below_the_r2_threshold_is_poor() -> None:
    from specbench.topology.fit import POOR_FIT_R2, poor_fits

    good = fit_alpha_beta(rows_for(6.0, 150.0))
    bad = AlphaBetaFit("gloo", "cpu", 2, 1.0, 1.0, POOR_FIT_R2 - 0.01, 0.3, 4)
    assert poor_fits([good, bad]) == [bad]
    assert bad.describe().startswith("gloo cpu 2 ranks: R^2 0.94")
