"""`specbench predict` as a library function: every configuration, best per concurrency.

Kept apart from the click command so that reports and the sweep can build the same
payload without a subprocess; the CLI only parses flags and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specbench.errors import BadInputError
from specbench.model.draft_profile import DraftProfile, load_draft_profile
from specbench.model.engines import EngineProfile, load_engine
from specbench.model.hardware import HardwareProfile, load_hardware
from specbench.model.hf_config import config_path
from specbench.model.performance import PerformanceModel, Prediction, break_even_concurrency
from specbench.model.targets import DOMAINS, TargetPreset, load_target
from specbench.model.workload import Workload
from specbench.spec_config import SpecConfig, config_key, valid_configs

KIND = "specbench.predict"
#: Concurrencies scanned for break-even, independent of the ones asked for.
BREAK_EVEN_SCAN: tuple[int, ...] = tuple(2**i for i in range(13))  # 1..4096
SIMULATED_LABEL = "SIMULATED: predicted by the specbench performance model, not measured"


def model_summary(target: TargetPreset, tp: int) -> dict[str, Any]:
    """Parameter counts and weight bytes per GPU, from the target's shape (config.json for
    a model folder), and whatever the target assumed rather than read."""
    a = target.arch
    return {
        "total_params": a.total_params,
        "active_params": a.active_params,
        "active_params_with_embedding": a.active_params_per_token,
        "mtp_layers": a.mtp_layers,
        "experts": a.num_experts,
        "experts_per_token": a.experts_per_token,
        "quantization": target.quantization,
        "weight_bytes_per_gpu": a.weight_bytes_per_gpu(tp),
        "assumptions": list(target.assumptions),
    }


def scan_break_even(
    model: PerformanceModel, config: SpecConfig, *, domain: str | None = None
) -> tuple[float | None, str]:
    """The model's break-even concurrency for one configuration over 1..4096, and a status
    ("crosses", "never-pays", "pays-everywhere-scanned") because None alone cannot say
    whether speculation pays everywhere or nowhere."""
    scan = model.predict_grid([config], list(BREAK_EVEN_SCAN), domain=domain)
    point = break_even_concurrency(scan)
    if point is not None:
        return point, "crosses"
    return None, "never-pays" if scan[0].speedup < 1.0 else "pays-everywhere-scanned"


def best_per_concurrency(predictions: Sequence[Prediction]) -> dict[int, Prediction]:
    """Highest speedup per concurrency; ties go to the smaller tree (cheaper to serve)."""
    best: dict[int, Prediction] = {}
    for p in predictions:
        cur = best.get(p.concurrency)
        if cur is None or _better(p, cur):
            best[p.concurrency] = p
    return dict(sorted(best.items()))


def _better(p: Prediction, cur: Prediction) -> bool:
    if p.speedup != cur.speedup:
        return p.speedup > cur.speedup
    return (
        p.config is not None
        and cur.config is not None
        and p.config.num_draft_tokens < cur.config.num_draft_tokens
    )


def _with_details(model: PerformanceModel, p: Prediction) -> dict[str, Any]:
    """A best row plus where its step time goes and whether it fits in memory."""
    mem = model.memory(p.config, p.concurrency)
    return {
        **p.as_row(),
        "breakdown": model.step_breakdown(p.config, p.concurrency),
        "baseline_breakdown": model.step_breakdown(None, p.concurrency),
        "memory": mem.as_dict(),
        "acceptance_by_position": None
        if p.config is None
        else model.acceptance_by_position(p.config),
    }


def tp_for_weights(target: TargetPreset, hardware_name: str, engine: EngineProfile) -> int:
    """For a model read from its config.json: the smallest TP of 1, 2, 4, 8 whose weights
    take at most 90% of what the engine gives weights and KV cache (the rest for KV)."""
    gpu = load_hardware(hardware_name).gpu
    room = 0.9 * gpu.memory_gib * engine.memory_fraction * 2**30
    for tp in (1, 2, 4, 8):
        if target.arch.weight_bytes_per_gpu(tp) <= room:
            return tp
    return 8


def predict_named(
    target_name: str,
    hardware_name: str,
    concurrencies: Sequence[int],
    *,
    tp: int | None = None,
    configs: Sequence[SpecConfig] = (),
    domain: str | None = None,
    seed: int = 0,
    engine_name: str | None = None,
    workload: Workload | None = None,
    draft_tp: int | None = None,
    draft_profile_name: str | None = None,
    draft_name: str | None = None,
    rates: Sequence[float] = (),
) -> dict[str, Any]:
    """``specbench predict``'s payload from names as a user gives them (a preset or a
    model folder, a hardware profile, an engine profile), shared by the CLI and the
    Python API so both resolve the defaults alike: an unset TP is the preset's, or for
    a model folder the smallest that fits its weights."""
    target = load_target(target_name, draft_name)
    engine = load_engine(engine_name)
    if tp is None:
        from_config = config_path(target_name) is not None
        tp = tp_for_weights(target, hardware_name, engine) if from_config else target.default_tp
    # `tp=0` must reach the check (it is falsy, so `tp or default` would hide it).
    hardware = load_hardware(hardware_name, tp)
    model, _preds, payload = build_prediction(
        target,
        hardware,
        concurrencies,
        configs=configs,
        domain=domain,
        seed=seed,
        engine=engine,
        workload=workload,
        draft_tp=draft_tp,
        draft_profile=None
        if draft_profile_name is None
        else load_draft_profile(draft_profile_name),
    )
    if rates:
        payload["rates"] = _rates(model, target, payload, rates, workload, configs, domain)
    return payload


def _rates(
    model: PerformanceModel,
    target: TargetPreset,
    payload: dict[str, Any],
    rates: Sequence[float],
    workload: Workload | None,
    configs: Sequence[SpecConfig],
    domain: str | None,
) -> dict[str, Any]:
    """predict's "rates": the given configurations, or the best per concurrency and the
    card's, at every rate (specbench.model.rate_prediction)."""
    from specbench.model.rate_prediction import rate_payload

    chosen = list(configs) or [target.card_config]
    if not configs:
        best = {str(b["config"]) for b in payload["best"]}
        chosen += [c for c in valid_configs() if config_key(c) in best]
    work = workload or Workload()
    input_len = work.input_len if work.input_len is not None else 512
    output_len = work.output_len or 256
    return rate_payload(
        model, chosen, rates, input_len=input_len, output_len=output_len, domain=domain
    )


def build_prediction(
    target: TargetPreset,
    hardware: HardwareProfile,
    concurrencies: Sequence[int],
    *,
    configs: Sequence[SpecConfig] | None = None,
    domain: str | None = None,
    seed: int = 0,
    engine: EngineProfile | None = None,
    workload: Workload | None = None,
    draft_tp: int | None = None,
    draft_profile: DraftProfile | None = None,
) -> tuple[PerformanceModel, list[Prediction], dict[str, Any]]:
    """Predictions for every (config, concurrency) and the JSON payload describing them."""
    if domain is not None and domain not in DOMAINS:
        raise BadInputError(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    if draft_profile is not None:
        if draft_profile.target != target.name:
            raise BadInputError(
                f"draft profile {draft_profile.name!r} was fitted for target "
                f"{draft_profile.target!r}, not {target.name!r}"
            )
        target = draft_profile.apply(target)
    engine = engine or load_engine()
    workload = workload or Workload()
    model = PerformanceModel(
        target, hardware, seed=seed, engine=engine, workload=workload, draft_tp=draft_tp
    )
    cfgs = list(configs) if configs else valid_configs()
    preds = model.predict_grid(cfgs, list(concurrencies), domain=domain)
    best = best_per_concurrency(preds)
    # Break-even of the configurations a user is likely to launch.
    interesting: dict[str, SpecConfig] = {}
    for p in best.values():
        if p.config is not None:
            interesting.setdefault(config_key(p.config), p.config)
    if not configs:
        interesting.setdefault(config_key(target.card_config), target.card_config)
    break_even: dict[str, float | None] = {}
    # None alone is ambiguous (pays everywhere, or never pays); the status says which,
    # in the report's vocabulary.
    break_even_status: dict[str, str] = {}
    for key, cfg in interesting.items():
        break_even[key], break_even_status[key] = scan_break_even(model, cfg, domain=domain)
    payload: dict[str, Any] = {
        "kind": KIND,
        "simulated": True,
        "label": SIMULATED_LABEL,
        "target": {
            "name": target.name,
            "model_path": target.model_path,
            "draft_model_path": target.draft_model_path,
            "algorithm": target.algorithm,
            "card_config": config_key(target.card_config),
            **model_summary(target, hardware.tp),
        },
        "hardware": hardware.summary(),
        "engine": engine.summary(),
        "draft_tp": model.cost.draft_tp,
        "draft_profile": None if draft_profile is None else draft_profile.name,
        "workload": workload.summary(target.overheads.context_tokens),
        "domain": domain or "mix",
        "seed": seed,
        "concurrencies": list(concurrencies),
        "rows": [p.as_row() for p in preds],
        "best": [_with_details(model, p) for p in best.values()],
        "break_even": break_even,
        "break_even_status": break_even_status,
        "break_even_scan": list(BREAK_EVEN_SCAN),
    }
    return model, preds, payload
