"""The engine adapter contract, and SGLang's adapter: one builder for every launch line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import partial

import pandas as pd
import pytest

from specbench.errors import BadInputError
from specbench.harness.engine import Deployment, EngineAdapter
from specbench.harness.engines import create, engine_names, get_engine, launch_engine_of
from specbench.harness.sglang import SGLANG
from specbench.model import load_target
from specbench.rundir.layout import normalise_trials
from specbench.spec_config import SpecConfig
from specbench.verdict import decide
from tests.support.fake_engine import FAKE
from tests.support.trials import trial_row


@dataclass(frozen=True)
class FakeTarget:
    model_path: str = "MiniMaxAI/MiniMax-M2.7"
    draft_model_path: str = "Lorbus/MiniMax-M2.7-EAGLE3"
    algorithm: str = "EAGLE3"
    default_tp: int = 8
    default_ep: int | None = 8
    extra_server_args: tuple[str, ...] = ("--trust-remote-code",)
    parallel_options: tuple[tuple[int, int | None], ...] = ((8, 8), (4, None))


def one_config_trials() -> pd.DataFrame:
    rows = [trial_row("baseline", 1, 1.0, None), trial_row("3-4-8", 1, 1.9, 2.6)]
    return normalise_trials(rows)


#: Every built-in engine and one a program adds (tests/support/fake_engine.py).
CONTRACT_ENGINES = [*(create(name) for name in engine_names()), FAKE]


@pytest.mark.parametrize("engine", CONTRACT_ENGINES, ids=[e.name for e in CONTRACT_ENGINES])
def test_every_engine_keeps_the_contract(engine: EngineAdapter) -> None:
    """What every adapter must do: its parser reads back what its builder writes, the
    baseline gets no speculative flag, user arguments come last."""
    deployment = Deployment.of(FakeTarget())
    config = SpecConfig(3, 1, 4) if engine.chain_only else SpecConfig(3, 4, 8)
    args = engine.launch_args(deployment, config, host="0.0.0.0", port=4321, server_args=["--x"])
    parsed = engine.parse_launch_args(args)
    assert SpecConfig(parsed.num_steps, parsed.topk, parsed.num_draft_tokens) == config  # type: ignore[arg-type]
    assert (parsed.model_path, parsed.host, parsed.port, parsed.tp) == (
        deployment.model_path,
        "0.0.0.0",
        4321,
        deployment.tp,
    )
    assert args[-1] == "--x"
    baseline = engine.parse_launch_args(engine.launch_args(deployment, None, port=1))
    assert baseline.algorithm is None and baseline.num_steps is None
    flags, line = engine.launch_line(deployment, config)
    printed = {"vllm": ["vllm", "serve", deployment.model_path]}
    expected = printed.get(engine.name, ["python", "-m", engine.server_module])
    assert shlex.split(line)[:3] == expected
    assert shlex.join(flags) in line
    assert engine.check_config(config) is None


def test_registry() -> None:
    assert get_engine("sglang") is SGLANG
    assert launch_engine_of("sim").launch_line(Deployment(), SpecConfig(3, 4, 8)) == (
        SGLANG.launch_line(Deployment(), SpecConfig(3, 4, 8))
    )  # the simulator imitates SGLang
    assert launch_engine_of("an-engine-this-install-lacks") is SGLANG
    with pytest.raises(BadInputError, match="unknown engine"):
        get_engine("nope")


def test_ep_size_follows_the_tp_served() -> None:
    """The launcher and the report's launch line agree: an EP size is written for one TP
    and only printed with that TP (it used to be added by the report at any TP)."""
    target = FakeTarget()
    at_default = SGLANG.launch_args(Deployment.of(target), None, port=1)
    assert at_default[at_default.index("--ep-size") + 1] == "8"
    explicit_same = SGLANG.launch_args(Deployment.of(target, tp=8), None, port=1)
    assert "--ep-size" in explicit_same
    at_four = SGLANG.launch_args(Deployment.of(target, tp=4), None, port=1)
    assert "--ep-size" not in at_four
    verdict = decide(
        one_config_trials(),
        [1],
        launch_line=partial(SGLANG.launch_line, Deployment.of(target, tp=4)),
    )
    assert verdict.to_json()["best"] is not None
    assert "--ep-size" not in verdict.to_json()["best"]["launch_command"]
    minimax = load_target("minimax-m2.7")  # --tp-size 4, or --tp-size 8 --ep-size 8
    assert "--ep-size" not in SGLANG.launch_args(Deployment.of(minimax), None, port=1)
    tp8 = SGLANG.launch_args(Deployment.of(minimax, tp=8), None, port=1)
    assert tp8[tp8.index("--ep-size") + 1] == "8"


def test_launch_command_from_target_preset() -> None:
    verdict = decide(
        one_config_trials(),
        [1],
        launch_line=partial(SGLANG.launch_line, Deployment.of(FakeTarget(), tp=8)),
    )
    assert verdict.to_json()["best"] is not None
    command = verdict.to_json()["best"]["launch_command"]
    assert command == (
        "python -m sglang.launch_server --model-path MiniMaxAI/MiniMax-M2.7 "
        "--tp-size 8 --ep-size 8 "
        "--speculative-algorithm EAGLE3 --speculative-draft-model-path "
        "Lorbus/MiniMax-M2.7-EAGLE3 --speculative-num-steps 3 --speculative-eagle-topk 4 "
        "--speculative-num-draft-tokens 8 --trust-remote-code"
    )
    assert verdict.to_json()["best"]["flags"][-6:] == [
        "--speculative-num-steps",
        "3",
        "--speculative-eagle-topk",
        "4",
        "--speculative-num-draft-tokens",
        "8",
    ]


def test_launch_command_without_target_uses_placeholders_or_manifest_paths() -> None:
    _, command = SGLANG.launch_line(Deployment.of(None), SpecConfig(3, 1, 4))
    assert "'<target-model-path>'" in command and "--tp-size 1" in command
    deployment = Deployment.of(None, tp=2, model_path="org/m", draft_model_path="org/d")
    _, command = SGLANG.launch_line(deployment, SpecConfig(3, 1, 4))
    assert "--model-path org/m" in command and "--speculative-draft-model-path org/d" in command
    assert "--tp-size 2" in command


def test_speculative_flags_end_with_the_three_numbers() -> None:
    flags = SGLANG.speculative_flags(Deployment(), SpecConfig(3, 4, 8))
    assert flags[-1] == "8"


def test_request_stats_from_meta_info() -> None:
    stats = SGLANG.request_stats(
        {
            "completion_tokens": 30,
            "prompt_tokens": 12.0,
            "spec_verify_ct": 10,
            "spec_accept_length": 3.0,
        }
    )
    assert (stats.completion_tokens, stats.prompt_tokens, stats.spec_verify_ct) == (30, 12, 10)
    assert stats.spec_accept_length == 3.0 and stats.aborted is None
    aborted = SGLANG.request_stats({"finish_reason": {"type": "abort", "message": "no KV"}})
    assert aborted.aborted == "aborted by the server: no KV"
    assert SGLANG.request_stats({"spec_verify_ct": True}).spec_verify_ct is None
    # A count that cannot exist reads as absent (the load generator fails such a request).
    assert SGLANG.request_stats({"prompt_tokens": "12"}).prompt_tokens is None
