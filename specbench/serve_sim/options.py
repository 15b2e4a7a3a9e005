"""serve-sim's options: its own flags, or the SGLang launch arguments it is started with.

The launch arguments are read by the SGLang engine adapter's parser, the inverse of the
builder the launcher uses, so serve-sim can stand in for SGLang behind ``--launch-cmd``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from specbench.errors import BadInputError
from specbench.harness.adaptive_config import SGLANG_ADAPTIVE, SGLANG_DEFAULT_CONFIG
from specbench.harness.adaptive_steps import AdaptiveSpec
from specbench.harness.sglang import SGLANG
from specbench.model import (
    DEFAULT_SIM_PROFILE,
    TargetPreset,
    list_targets,
    load_hardware,
    load_target,
)
from specbench.serve_sim.scheduler import SimServerOptions
from specbench.spec_config import EAGLE3, SpecConfig
from specbench.spec_methods import method_of_engine_name


# -- options: from serve-sim's own flags and from SGLang's launch_server arguments -------------
def _triple_or_none(
    num_steps: int | None, topk: int | None, num_draft_tokens: int | None, where: str
) -> SpecConfig | None:
    values = (num_steps, topk, num_draft_tokens)
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise BadInputError(
            f"{where}: set all three of num-steps, topk and num-draft-tokens, or none"
        )
    assert num_steps is not None and topk is not None and num_draft_tokens is not None
    return SpecConfig(num_steps, topk, num_draft_tokens)


def _target_for_model_path(model_path: str) -> TargetPreset | None:

    for name in list_targets():
        preset = load_target(name)
        if preset.model_path == model_path:
            return preset
    return None


def _check_simulated(algorithm: str) -> None:
    """serve-sim models EAGLE-style drafting by the preset's head; another method
    (NEXTN, STANDALONE, NGRAM, DFLASH) is a clear failure, never invented numbers."""
    name = method_of_engine_name(algorithm, "sglang")
    if name not in (EAGLE3, "eagle"):
        raise BadInputError(
            f"--sglang-args: --speculative-algorithm {algorithm} ({name}) is not simulated: "
            "serve-sim models EAGLE/EAGLE3 drafting only; measure it on a real SGLang server"
        )


def _preset_for(target: str | None, model_path: str | None) -> TargetPreset:
    """The preset named by --target, else the one whose model SGLang's --model-path names."""
    if target is not None:
        return load_target(target)
    if model_path:
        found = _target_for_model_path(model_path)
        if found is None and (Path(model_path) / "config.json").is_file():
            # A local model folder no preset names: the model's own config.json says its shape.
            return load_target(model_path)
        if found is None:
            raise BadInputError(
                f"no target preset serves --model-path {model_path!r}; pass --target"
            )
        return found
    raise BadInputError("--target is required (e.g. --target minimax-m2.7)")


def adaptive_from_sglang_args(
    sglang_args: Sequence[str], config: SpecConfig | None, algorithm: str
) -> AdaptiveSpec | None:
    """``--speculative-adaptive [--speculative-adaptive-config FILE]`` as SGLang 0.5.23
    reads them (server_args.py): the file, or SGLang's built-in tiers without one; the
    rules SGLang applies are checked here, so a config it would refuse is one line."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--speculative-adaptive", action="store_true")
    parser.add_argument("--speculative-adaptive-config", default=None)
    known, _ = parser.parse_known_args(list(sglang_args))
    path = known.speculative_adaptive_config
    if not known.speculative_adaptive:
        if path is not None:
            raise BadInputError(
                "--sglang-args: --speculative-adaptive-config without --speculative-adaptive "
                "does nothing (add --speculative-adaptive)"
            )
        return None
    if config is None:
        raise BadInputError("--sglang-args: --speculative-adaptive without speculation")
    if config.topk != 1:
        raise BadInputError(
            f"--sglang-args: SGLang's adaptive speculation runs topk 1 only (got "
            f"--speculative-eagle-topk {config.topk})"
        )
    from specbench.harness.engine import Deployment

    SGLANG_ADAPTIVE.check_deployment(Deployment(algorithm=algorithm))
    if path is None:
        body: object = SGLANG_DEFAULT_CONFIG
        name = "sglang-default"
    else:
        try:
            body = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise BadInputError(f"--speculative-adaptive-config {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise BadInputError(
                f"--speculative-adaptive-config {path}: not JSON ({exc.msg})"
            ) from None
        name = str(path)
    SGLANG_ADAPTIVE.check(body, name)
    assert isinstance(body, dict)  # check refuses anything else
    return AdaptiveSpec.sglang(body, initial_steps=config.num_steps, name=name)


def resolve_options(
    *,
    target: str | None,
    hardware: str | None,
    num_steps: int | None = None,
    topk: int | None = None,
    num_draft_tokens: int | None = None,
    no_speculation: bool = False,
    host: str = "127.0.0.1",
    port: int = 30000,
    time_scale: float = 1.0,
    seed: int = 0,
    startup_delay_s: float = 0.0,
    sglang_args: Sequence[str] | None = None,
) -> SimServerOptions:
    """Combine serve-sim's flags with SGLang arguments into one validated option set.

    With SGLang arguments the configuration follows SGLang's rules: no
    ``--speculative-algorithm`` means no speculation, the algorithm without numbers
    means the target's auto-chosen configuration. Without them, the three numbers (or
    ``--no-speculation``) choose it, and the default is the model card's configuration.
    """

    if time_scale <= 0:
        raise BadInputError(f"--time-scale must be > 0 (got {time_scale:g})")
    if startup_delay_s < 0:
        raise BadInputError(f"--startup-delay must be >= 0 (got {startup_delay_s:g})")
    direct = _triple_or_none(num_steps, topk, num_draft_tokens, "serve-sim")
    if direct is not None and no_speculation:
        raise BadInputError("--no-speculation contradicts --num-steps/--topk/--num-draft-tokens")
    sg = SGLANG.parse_launch_args(sglang_args) if sglang_args is not None else None

    preset = _preset_for(target, sg.model_path if sg is not None else None)
    config: SpecConfig | None
    if sg is not None:
        if direct is not None or no_speculation:
            raise BadInputError(
                "give the configuration either as serve-sim options or in --sglang-args, not both"
            )
        if sg.algorithm:
            _check_simulated(sg.algorithm)
        from_sg = _triple_or_none(sg.num_steps, sg.topk, sg.num_draft_tokens, "--sglang-args")
        if sg.algorithm:
            config = from_sg if from_sg is not None else preset.auto_config
        elif from_sg is not None:
            raise BadInputError(
                "--sglang-args: speculative numbers without --speculative-algorithm"
            )
        else:
            config = None
        host = sg.host or host
        port = sg.port if sg.port is not None else port
    else:
        config = None if no_speculation else (direct or preset.card_config)
    if not 0 < port < 65536:
        raise BadInputError(f"--port must be in 1..65535 (got {port})")
    # Like SGLang, an unset --tp-size means the deployment the target is served with, not
    # whatever TP the hardware profile happens to describe (llama-3.1-8b runs on one GPU).
    tp = sg.tp if sg is not None and sg.tp is not None else preset.default_tp
    profile = load_hardware(hardware or DEFAULT_SIM_PROFILE, tp=tp)
    adaptive = (
        adaptive_from_sglang_args(sglang_args, config, sg.algorithm or preset.algorithm)
        if sglang_args is not None and sg is not None
        else None
    )
    return SimServerOptions(
        adaptive=adaptive,
        target=preset,
        hardware=profile,
        config=config,
        host=host,
        port=port,
        time_scale=time_scale,
        seed=seed,
        startup_delay_s=startup_delay_s,
        tp=tp,
        max_running_requests=sg.max_running_requests if sg is not None else None,
        cuda_graph_max_bs=sg.cuda_graph_max_bs if sg is not None else None,
        draft_model_path=sg.draft_model_path if sg is not None else None,
        model_path=sg.model_path if sg is not None else None,
    )
