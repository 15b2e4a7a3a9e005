"""`specbench predict`: tau and speedup of every configuration, from the model (SIMULATED)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from specbench.cli import options
from specbench.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_HARDWARE,
    DEFAULT_TARGET,
    EXIT_CODES,
)
from specbench.cli.values import parse_concurrency_list
from specbench.errors import BadInputError
from specbench.schema import dumps
from specbench.spec_config import SpecConfig


@click.command(name="predict", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@options.TARGET(default=DEFAULT_TARGET, param="target_name")
@options.HARDWARE(param="hardware_name", default=DEFAULT_HARDWARE)
@options.CONCURRENCY(default="1,8,32", param="concurrency_text")
@options.TP(default_text="the target preset's")
@options.CONFIG(param="config_texts", use="Predict only these (default: every valid one).")
@click.option(
    "--domain",
    type=click.Choice(["chat", "code", "math", "mix"]),
    default="mix",
    help="Text domain of the acceptance model.",
)
@click.option(
    "--top", type=int, default=5, metavar="N", help="Configurations shown per concurrency."
)
@options.SEED(default=0, use="Seeds the Monte-Carlo of the acceptance model.")
@options.ENGINE(
    param="engine_name",
    default_text="sglang",
    use="Its overhead profile is used; a TOML file gives another engine's.",
)
@options.TEMPERATURE(default=0.0)
@click.option(
    "--input-len",
    type=int,
    default=None,
    metavar="TOKENS",
    show_default="the preset's context",
    help="Prompt tokens per request.",
)
@click.option(
    "--output-len",
    type=int,
    default=None,
    metavar="TOKENS",
    help="Completion tokens per request (half of them count towards the context).",
)
@click.option(
    "--draft-tp",
    type=int,
    default=None,
    metavar="N",
    show_default="the target's",
    help="Tensor-parallel size of the draft.",
)
@options.DRAFT_PROFILE(param="draft_profile_name", default_text="the target preset's draft")
@click.option(
    "--draft",
    "draft_name",
    metavar="DIR|CONFIG.JSON",
    default=None,
    help="The EAGLE3 draft's folder or config.json, for a --target read from config.json.",
)
@click.option(
    "--rate",
    "rate_text",
    default=None,
    metavar="R[,R...]",
    help="Also predict at these request rates (requests/s): TPOT, TTFT and capacity of no "
    "speculation and of the fastest unsaturated configuration, queueing from the "
    "predicted service rate at each batch size.",
)
@options.JSON(param="as_json")
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="List targets, hardware, engine and draft profiles, then exit.",
)
def predict(
    target_name: str,
    hardware_name: str,
    concurrency_text: str,
    tp: int | None,
    config_texts: Sequence[str],
    domain: str,
    top: int,
    seed: int,
    engine_name: str | None,
    temperature: float,
    input_len: int | None,
    output_len: int | None,
    draft_tp: int | None,
    draft_profile_name: str | None,
    draft_name: str | None,
    rate_text: str | None,
    as_json: bool,
    list_only: bool,
) -> None:
    """Predict tau and speedup of every configuration (model, no GPU).

    Every number is SIMULATED by the performance model, not measured; `specbench sweep`
    measures them.
    """
    # The model (numpy, scipy) loads here, not at import: `specbench predict -h` stays fast.
    from specbench.model import list_profiles, list_targets
    from specbench.model.draft_profile import list_draft_profiles
    from specbench.model.engines import list_engines
    from specbench.model.predict import predict_named
    from specbench.model.workload import Workload

    if list_only:
        click.echo("targets:  " + ", ".join(list_targets()))
        click.echo("hardware: " + ", ".join(list_profiles()))
        click.echo("engines:  " + ", ".join(list_engines()))
        click.echo("drafts:   " + ", ".join(list_draft_profiles()))
        return
    if top < 1:
        raise BadInputError(f"--top must be >= 1 (got {top})")
    from specbench.cli.predict_verdict import engine_of, predicted_decision, runnable_configs
    from specbench.spec_config import valid_configs

    concurrencies = sorted(set(parse_concurrency_list(concurrency_text)))
    configs = SpecConfig.parse_list(config_texts)
    rates = _rates(rate_text)
    engine = engine_of(engine_name)
    runnable = runnable_configs(engine, configs)
    if not runnable:
        reason = engine.check_config(configs[0]) if configs else None
        raise BadInputError(f"no configuration given can run on {engine.name}: {reason}")
    payload = predict_named(
        target_name,
        hardware_name,
        concurrencies,
        tp=tp,
        # Nothing given and nothing refused: every valid configuration, the card's
        # break-even scanned as well.
        configs=runnable if configs or len(runnable) < len(valid_configs()) else [],
        domain=None if domain == "mix" else domain,
        seed=seed,
        engine_name=engine_name,
        workload=Workload(input_len, output_len, temperature),
        draft_tp=draft_tp,
        draft_profile_name=draft_profile_name,
        draft_name=draft_name,
        rates=rates,
    )
    decision = predicted_decision(
        payload,
        target_name=target_name,
        hardware_name=hardware_name,
        engine_name=engine_name,
        draft_name=draft_name,
    )
    if as_json:
        # The decision's fields beside the model's table; the table keeps its own
        # "best" (per load, highest speedup) and "break_even" (scanned to 4096).
        extra = {k: v for k, v in decision.to_json().items() if k not in payload}
        click.echo(dumps({**payload, **extra}))
        return
    _print_tables(payload, top)
    _print_decision(decision)


def _print_decision(decision: Any) -> None:
    """The decision as a sweep prints it: headline, why, per-load picks with the model's
    intervals and launch lines, the defaults, the memory check."""
    from rich.console import Console

    from specbench.verdict.feasibility import memory_text
    from specbench.verdict.text import decision_lines

    console = Console()
    console.print("decision (SIMULATED: the model's speedups, +-10% intervals):", style="bold")
    # Prose wraps at the terminal's width; a launch line stays one line, to paste whole.
    launches = {decision.launch, *(pick.launch for pick in decision.loads)}
    for line in decision_lines(decision):
        whole = line.strip() in launches
        console.print(line, highlight=False, soft_wrap=whole, markup=False)
    if decision.memory is not None:
        console.print(f"memory: {memory_text(decision.memory)}", highlight=False, markup=False)


def _rates(text: str | None) -> list[float]:
    """``--rate 2,8``: the same bounds and messages as sweep's ``--load rate:``."""
    if text is None:
        return []
    from specbench.limits import check_bound

    rates: list[float] = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise BadInputError(f"--rate: {part.strip()!r} is not a number") from None
        check_bound("--rate", value)
        rates.append(value)
    return rates


def _named(key: str) -> str:
    return "no speculation" if key == "baseline" else key


def _print_rates(console: Any, payload: dict[str, Any]) -> None:
    from rich.table import Table

    from specbench.cli.terminal import print_table

    rates = payload.get("rates")
    if not rates:
        return
    table = Table(title=f"at a request rate, {rates['output_len']} tokens each (SIMULATED)")
    for col in ("req/s", "no speculation TPOT", "TTFT", "capacity", "fastest", "TPOT"):
        table.add_column(col, justify="right")

    def ms(value: Any) -> str:
        return "saturated" if value is None else f"{value:.1f} ms"

    for base, best in zip(rates["baseline"], rates["best"], strict=True):
        table.add_row(
            f"{base['rate_per_s']:g}",
            ms(base["tpot_ms"]),
            ms(base["ttft_ms"]),
            f"{base['capacity_per_s']:.3g} req/s",
            "-"
            if best is None
            else f"{_named(best['config_key'])} ({best['capacity_per_s']:.3g} req/s)",
            "saturated" if best is None else ms(best["tpot_ms"]),
        )
    print_table(console, table, "--json")


def _model_line(tgt: dict[str, Any], tp: int) -> str:
    """Parameters and weight bytes per GPU, as computed from the target's shape."""
    experts = (
        f"MoE {tgt['experts']} experts, top-{tgt['experts_per_token']}"
        if tgt["experts"]
        else "dense"
    )
    mtp = f", {tgt['mtp_layers']} MTP layer(s)" if tgt["mtp_layers"] else ""
    quant = f", {tgt['quantization']}" if tgt["quantization"] else ""
    return (
        f"model: {tgt['total_params'] / 1e9:.1f}B parameters, "
        f"{tgt['active_params'] / 1e9:.2f}B active per token "
        f"({tgt['active_params_with_embedding'] / 1e9:.2f}B with the input embedding); "
        f"{experts}{mtp}{quant}; weights {tgt['weight_bytes_per_gpu'] / 2**30:.1f} GiB "
        f"per GPU at TP {tp}"
    )


def _print_tables(payload: dict[str, Any], top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from specbench.cli.terminal import print_table

    console = Console()
    hw = payload["hardware"]
    tgt = payload["target"]
    console.print(f"[bold yellow]{payload['label']}[/]")
    console.print(
        f"target {tgt['name']} ({tgt['model_path']} + {tgt['draft_model_path']}), "
        f"hardware {hw['name']} ({hw['interconnect_class']}, {hw['gpu']}, TP {hw['tp']}), "
        f"domain {payload['domain']}, engine {payload['engine']['name']}"
    )
    console.print(_model_line(tgt, int(hw["tp"])), markup=False)
    for assumption in tgt["assumptions"]:
        console.print(f"assumed: {assumption}", markup=False)
    rows = payload["rows"]
    for conc in payload["concurrencies"]:
        at = sorted(
            (r for r in rows if r["concurrency"] == conc), key=lambda r: -float(r["speedup"])
        )[:top]
        table = Table(title=f"concurrency {conc} — top {len(at)} (SIMULATED)")
        for col in (
            "steps",
            "topk",
            "draft tokens",
            "tau",
            "speedup",
            "step ms",
            "base step ms",
            "tok/s",
            "base tok/s",
        ):
            table.add_column(col, justify="right")
        for r in at:
            table.add_row(
                str(r["num_steps"]),
                str(r["topk"]),
                str(r["num_draft_tokens"]),
                f"{r['tau']:.2f}",
                f"{r['speedup']:.2f}x",
                f"{r['step_time_ms']:.2f}",
                f"{r['baseline_step_time_ms']:.2f}",
                f"{r['tokens_per_s']:.0f}",
                f"{r['baseline_tokens_per_s']:.0f}",
            )
        print_table(console, table, "--json")
    scan = payload["break_even_scan"]
    for key, value in payload["break_even"].items():
        status = payload["break_even_status"][key]
        if value is not None:
            where = f"~{value:.0f} concurrent requests"
        elif status == "never-pays":
            where = "none: slower than no speculation from 1 concurrent request on"
        else:
            where = f"none: still faster at {scan[-1]} concurrent requests"
        console.print(f"break-even (speedup falls through 1) for {key}: {where} (SIMULATED)")
    _print_rates(console, payload)
