"""What can be launched: the memory check, the engine's limits, the rerun that fits."""

from __future__ import annotations

import pytest

from specbench.model import load_hardware, load_target
from specbench.verdict.feasibility import memory_check, memory_text, with_tp


def test_memory_check_says_which_tp_fits() -> None:
    target = load_target("minimax-m2.7")
    l40s = memory_check(target, load_hardware("l40s-pcie-host-staged", tp=4), 32, 2048)
    assert not l40s.fits and l40s.min_tp == 8
    assert l40s.weights_gib == pytest.approx(230e9 / 4 / 2**30, rel=0.05)
    assert "--tp-size 8" in memory_text(l40s)
    rtx = memory_check(target, load_hardware("rtx4090-pcie-host-staged", tp=4), 8, 2048)
    assert rtx.min_tp is None and "does not fit on this box" in memory_text(rtx)
    assert memory_check(target, load_hardware("h200-nvlink", tp=4), 32, 2048).fits


def test_the_rerun_names_the_fitting_tp_once() -> None:
    base = ["specbench", "sweep", "--target", "minimax-m2.7", "--tp", "4", "--out", "x"]
    assert with_tp(base, 8) == "specbench sweep --target minimax-m2.7 --tp 8"
    assert with_tp(["specbench", "sweep", "--tp=2"], 8) == "specbench sweep --tp 8"
