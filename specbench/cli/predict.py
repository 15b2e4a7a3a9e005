"""`specbench predict`: tau and speedup of every configuration, from the model (SIMULATED)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from specbench.cli.values import parse_concurrency_list
from specbench.errors import BadInputError
from specbench.model import (
    DEFAULT_SIM_PROFILE,
    list_profiles,
    list_targets,
    load_hardware,
    load_target,
)
from specbench.model.draft_profile import list_draft_profiles, load_draft_profile
from specbench.model.engines import list_engines, load_engine
from specbench.model.predict import build_prediction
from specbench.model.workload import Workload
from specbench.schema import dumps
from specbench.spec_config import parse_configs


@click.command(name="predict")
@click.option("--target", "target_name", metavar="NAME", help="Target preset (see --list).")
@click.option(
    "--hardware",
    "hardware_name",
    metavar="PROFILE|FILE",
    default=None,
    help="Hardware profile name, or a `specbench probe --out` JSON [default: h200-nvlink].",
)
@click.option(
    "--concurrency",
    "concurrency_text",
    default="1,8,32,128",
    show_default=True,
    help="Comma-separated numbers of concurrent requests.",
)
@click.option("--tp", type=int, default=None, help="Tensor-parallel size [default: the target's].")
@click.option(
    "--config",
    "config_texts",
    multiple=True,
    metavar="S,K,N",
    help="Predict only this configuration (repeatable), e.g. 3,4,8.",
)
@click.option(
    "--domain",
    type=click.Choice(["chat", "code", "math", "mix"]),
    default="mix",
    show_default=True,
    help="Text domain of the acceptance model.",
)
@click.option(
    "--top", type=int, default=5, show_default=True, help="Configurations shown per concurrency."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Monte-Carlo seed.")
@click.option(
    "--engine",
    "engine_name",
    metavar="NAME|FILE",
    default=None,
    help="Engine overhead profile: sglang, vllm, or a TOML [default: sglang].",
)
@click.option(
    "--temperature", type=float, default=0.0, show_default=True, help="Sampling temperature."
)
@click.option("--input-len", type=int, default=None, help="Prompt tokens [default: preset's].")
@click.option("--output-len", type=int, default=None, help="Completion tokens per request.")
@click.option("--draft-tp", type=int, default=None, help="Draft TP size [default: target's].")
@click.option(
    "--draft-profile",
    "draft_profile_name",
    metavar="NAME|FILE",
    default=None,
    help="Draft acceptance profile (shipped name, or a file written by calibration).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON payload to stdout.")
@click.option("--list", "list_only", is_flag=True, help="List targets and hardware profiles.")
def predict(
    target_name: str | None,
    hardware_name: str | None,
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
    as_json: bool,
    list_only: bool,
) -> None:
    """Predict tau and speedup for every valid configuration (SIMULATED, not measured)."""
    if list_only:
        click.echo("targets:  " + ", ".join(list_targets()))
        click.echo("hardware: " + ", ".join(list_profiles()))
        click.echo("engines:  " + ", ".join(list_engines()))
        click.echo("drafts:   " + ", ".join(list_draft_profiles()))
        return
    if not target_name:
        raise BadInputError(f"--target is required; known: {', '.join(list_targets())}")
    if top < 1:
        raise BadInputError(f"--top must be >= 1 (got {top})")
    concurrencies = sorted(set(parse_concurrency_list(concurrency_text)))
    configs = parse_configs(config_texts)
    target = load_target(target_name)
    # `--tp 0` must reach the check (it is falsy, so `tp or default` would hide it).
    hardware = load_hardware(
        hardware_name or DEFAULT_SIM_PROFILE, target.default_tp if tp is None else tp
    )
    _, _preds, payload = build_prediction(
        target,
        hardware,
        concurrencies,
        configs=configs,
        domain=None if domain == "mix" else domain,
        seed=seed,
        engine=load_engine(engine_name),
        workload=Workload(input_len, output_len, temperature),
        draft_tp=draft_tp,
        draft_profile=None
        if draft_profile_name is None
        else load_draft_profile(draft_profile_name),
    )
    if as_json:
        click.echo(dumps(payload))
        return
    _print_tables(payload, top)


def _print_tables(payload: dict[str, Any], top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    hw = payload["hardware"]
    tgt = payload["target"]
    console.print(f"[bold yellow]{payload['label']}[/]")
    console.print(
        f"target {tgt['name']} ({tgt['model_path']} + {tgt['draft_model_path']}), "
        f"hardware {hw['name']} ({hw['interconnect_class']}, {hw['gpu']}, TP {hw['tp']}), "
        f"domain {payload['domain']}, engine {payload['engine']['name']}"
    )
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
            "baseline ms",
            "tok/s",
            "baseline tok/s",
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
        console.print(table)
    best = Table(title="best configuration per concurrency (SIMULATED)")
    for col in ("concurrency", "config", "tau", "speedup"):
        best.add_column(col, justify="right")
    for r in payload["best"]:
        verdict = "" if float(r["speedup"]) >= 1.0 else "  (speculation does not pay)"
        best.add_row(
            str(r["concurrency"]),
            str(r["config"]),
            f"{r['tau']:.2f}",
            f"{r['speedup']:.2f}x{verdict}",
        )
    console.print(best)
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
