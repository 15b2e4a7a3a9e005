"""Engines come from one registry: a name or a ready engine, built-in or added by a
program, and the sweep and the report reach each only through its adapter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.harness.engines import (
    backend_choices,
    create,
    engine_names,
    launch_engine_of,
    register,
    unregister,
)
from specbench.harness.sim_adapter import SIM
from specbench.report.html import render_report
from specbench.spec_config import SpecConfig
from specbench.sweeps.runner import run_sweep
from tests.support.fake_engine import FAKE, NAME
from tests.support.sweeps import fast_options

CONFIGS = (SpecConfig(3, 1, 4), SpecConfig(2, 4, 6))
FAKE_LINE = "python -m fake_engine.serve --model MiniMaxAI/MiniMax-M2.7 --shards 4"


@pytest.fixture
def fake_registered() -> Iterator[None]:
    register(FAKE)
    try:
        yield
    finally:
        unregister(NAME)


def test_the_registry_lists_built_in_engines_without_importing_them() -> None:
    assert engine_names()[:3] == ("sim", "sglang", "vllm")
    assert backend_choices()[0] == "auto"
    assert create("sim") is SIM and create(SIM) is SIM
    with pytest.raises(BadInputError, match="unknown engine 'nope'"):
        create("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(SIM)


def test_a_registered_engine_runs_a_sweep_and_its_report(
    tmp_path: Path, fake_registered: None
) -> None:
    assert NAME in backend_choices() and launch_engine_of(NAME) is FAKE
    outcome = run_sweep(fast_options(tmp_path / "run", backend=NAME, strategy="fixed",
                                     configs=CONFIGS))  # fmt: skip
    assert outcome.backend == NAME
    assert outcome.run_dir.read_manifest().backend == NAME
    assert outcome.results["best"]["launch_command"].startswith(FAKE_LINE)
    best = outcome.results["best"]  # the decision's pick, in the engine's own flags
    flags = (
        f"--depth {best['num_steps']} --width {best['topk']} --budget {best['num_draft_tokens']}"
    )
    assert best["config_key"] in {c.key for c in CONFIGS} and flags in best["launch_command"]
    # Its own rules: fixed configurations it cannot run are refused before anything runs.
    with pytest.raises(BadInputError, match="--config 3-8-8: the fake engine drafts at most 4"):
        run_sweep(fast_options(tmp_path / "wide", backend=NAME, strategy="fixed",
                               configs=(SpecConfig(3, 8, 8),)))  # fmt: skip
    # The report reads the engine back from the manifest's name and prints its lines.
    html = render_report(outcome.run_dir.path).read_text()
    assert "fake_engine.serve" in html and "sglang.launch_server" not in html


def test_a_ready_engine_is_accepted_without_registering_it(tmp_path: Path) -> None:
    assert NAME not in engine_names()
    outcome = run_sweep(fast_options(tmp_path / "run", backend=FAKE, strategy="fixed",
                                     configs=CONFIGS[:1]))  # fmt: skip
    assert outcome.backend == NAME
    assert "--budget 4" in outcome.results["best"]["launch_command"]


def test_no_engine_is_named_outside_its_module_and_the_registry() -> None:
    """Everything engine-specific is asked of the adapter: no comparison with an
    engine's name anywhere else in the package."""
    root = Path(__file__).resolve().parents[2] / "specbench"
    owners = {"harness/engines.py", "harness/sim_adapter.py", "harness/sglang.py",
              "harness/vllm.py"}  # fmt: skip
    name = r"""["'](?:sglang|vllm|sim)["']"""
    comparison = re.compile(rf"(?:[=!]=|\bin)\s*\(?\s*{name}|{name}\s*(?:[=!]=|\bin\b)")
    found = [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path.relative_to(root).as_posix() not in owners
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if comparison.search(line)
    ]
    assert found == []
