"""``specbench sweep``: measure tau and speedup across configurations and concurrencies.

Thin on purpose: flags are parsed here, the sweep lives in specbench.sweeps.
Progress and notes go to stderr; stdout carries the final table (or JSON with --json).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from specbench.cli.values import parse_concurrency_list
from specbench.errors import BadInputError
from specbench.harness.engines import engine_of_backend
from specbench.harness.server_backend import DEFAULT_READY_TIMEOUT_S
from specbench.report.html import render_report
from specbench.schema import dumps
from specbench.spec_config import BASELINE_KEY, SpecConfig, parse_configs
from specbench.sweeps.options import (
    DEFAULT_CONCURRENCIES,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_NUM_PROMPTS,
    DEFAULT_TARGET,
    SweepOptions,
)
from specbench.sweeps.progress import RichProgress
from specbench.sweeps.runner import SweepOutcome, run_sweep

#: Rows of the final table.
TOP_ROWS = 5


def _concurrencies(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    """``1,8,32`` -> (1, 8, 32); the first is the primary concurrency, so order matters
    (a repeat is refused with the other option checks, in sweeps.options)."""
    return tuple(parse_concurrency_list(text))


def _configs(
    ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]
) -> tuple[SpecConfig, ...]:
    return tuple(parse_configs(texts))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a job scheduler, `kill`) stops the sweep like Ctrl-C: the running trial is
    marked failed, its server stopped and results written, instead of dying mid-write
    and leaving a server behind."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _split_args(ctx: click.Context, param: click.Parameter, text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise BadInputError(f"cannot parse --server-args {text!r}: {exc}") from None


@click.command("sweep")
@click.option(
    "--target",
    default=DEFAULT_TARGET,
    show_default=True,
    help="Target preset name (or a preset TOML file).",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "sim", "sglang"]),
    default="auto",
    show_default=True,
    help="auto: SGLang when --endpoint is given or a GPU and sglang are present, "
    "else the SIMULATED backend.",
)
@click.option(
    "--hardware",
    default=None,
    metavar="PROFILE|PROBE_JSON",
    help="Hardware profile or `specbench probe --out` JSON: the simulated truth "
    "for --backend sim, and the model prior's hardware.",
)
@click.option(
    "--prior-hardware",
    default=None,
    metavar="PROFILE|PROBE_JSON",
    help="Hardware the model prior assumes (default: --hardware).",
)
@click.option(
    "--endpoint",
    default=None,
    metavar="URL",
    help="Attach to a running SGLang server and measure only its configuration.",
)
@click.option(
    "--baseline-endpoint",
    default=None,
    metavar="URL",
    help="With --endpoint: a server without speculation to compute speedup against.",
)
@click.option(
    "--launch-cmd",
    default=None,
    help="Command that launches SGLang (default: python -m sglang.launch_server).",
)
@click.option(
    "--server-args",
    default=None,
    callback=_split_args,
    help="Extra SGLang server arguments (one string).",
)
@click.option("--tp", type=int, default=None, help="Tensor-parallel size (default: the preset's).")
@click.option(
    "--ready-timeout",
    "ready_timeout_s",
    type=float,
    default=DEFAULT_READY_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait for a launched server to become ready.",
)
@click.option(
    "--dataset",
    type=click.Path(path_type=Path),
    default=None,
    help="Prompts as JSONL ({'prompt': ...}) or ShareGPT JSON (default: built-in mix).",
)
@click.option("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, show_default=True)
@click.option(
    "--num-prompts",
    type=int,
    default=DEFAULT_NUM_PROMPTS,
    show_default=True,
    help="Prompts per load, mixed across domains.",
)
@click.option(
    "--concurrency",
    "concurrencies",
    default=",".join(map(str, DEFAULT_CONCURRENCIES)),
    callback=_concurrencies,
    show_default=True,
    help="Concurrencies to measure; the first is the one the search optimises.",
)
@click.option(
    "--strategy",
    type=click.Choice(["optuna", "grid", "fixed"]),
    default=None,
    help="optuna (default): model-guided search; grid: every valid "
    "configuration; fixed: only the --config ones.",
)
@click.option("--sampler", type=click.Choice(["tpe", "gp"]), default="tpe", show_default=True)
@click.option(
    "--config",
    "configs",
    multiple=True,
    callback=_configs,
    metavar="STEPS,TOPK,DRAFT",
    help="With --strategy fixed: a configuration to measure (repeatable).",
)
@click.option(
    "--space",
    default=None,
    help="Narrow the search, e.g. 'num_steps=2..5,topk=1|4|8,num_draft_tokens=4..32'.",
)
@click.option(
    "--trials",
    type=int,
    default=None,
    help="Configurations to measure in the study (default 30 for optuna; all for grid).",
)
@click.option(
    "--budget-minutes",
    type=float,
    default=None,
    help="Stop starting new configurations after this many minutes (one always runs).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory (default runs/<time>-<target>-<hardware>/); reuse it to resume.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Optuna storage: postgresql://... to share a study between hosts "
    "(default: a journal file in the run directory).",
)
@click.option(
    "--study-name", default=None, help="Study name; workers sharing one study use the same."
)
@click.option(
    "--sim-perturbation",
    type=float,
    default=0.0,
    show_default=True,
    help="Move the simulated truth away from the model prior by this much (0: the sim is "
    "the calibrated model; >0 rehearses a search whose prior is wrong).",
)
@click.option("--no-report", is_flag=True, help="Do not render report.html.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the results summary as JSON on stdout."
)
def sweep(strategy: str | None, no_report: bool, as_json: bool, **values: Any) -> None:
    """Measure tau and speedup across configurations and concurrencies."""
    if values["endpoint"] is not None and strategy is not None:
        raise BadInputError(
            f"--endpoint measures only the attached server's configuration; drop --strategy {strategy}"
        )
    options = SweepOptions(
        **values,
        strategy=strategy or ("fixed" if values["endpoint"] is not None else "optuna"),
        report=not no_report,
        command=("specbench", *sys.argv[1:]),
    )
    err = Console(stderr=True)
    with RichProgress(err) as progress, _sigterm_as_interrupt():
        outcome = run_sweep(options, progress, render_report=render_report)
    for note in outcome.notes:
        if note.startswith("report.html skipped"):
            err.print(note, highlight=False)
    if as_json:
        summary = {k: v for k, v in outcome.results.items() if k != "trials"}
        summary["run_dir"] = str(outcome.run_dir.path)
        summary["report"] = str(outcome.report_path) if outcome.report_path else None
        click.echo(dumps(summary))
        return
    print_summary(Console(), outcome)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    if number != number:
        return "-"
    return f"{number:.{digits}f}"


def print_summary(console: Console, outcome: SweepOutcome) -> None:
    """The top configurations with tau, speedup per concurrency and the flags to paste."""
    results = outcome.results
    concurrencies = [int(c) for c in results["concurrencies"]]
    primary = concurrencies[0]
    frame = outcome.trials
    done = frame[(frame["state"] == "complete") & (frame["config_key"] != BASELINE_KEY)]
    sim = "SIMULATED " if outcome.simulated else ""
    table = Table(title=f"{sim}top configurations (ranked by speedup at concurrency {primary})")
    table.add_column("#", justify="right")
    table.add_column("config", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column(f"tau@{primary}", justify="right", no_wrap=True)
    for c in concurrencies:
        table.add_column(f"x@{c}", justify="right", no_wrap=True)
    primary_rows = done[done["concurrency"] == primary].sort_values(
        "speedup", ascending=False, na_position="last"
    )
    engine = engine_of_backend(outcome.backend)
    flags: list[str] = []
    for rank, (_, row) in enumerate(primary_rows.head(TOP_ROWS).iterrows(), start=1):
        key = str(row["config_key"])
        per_c = done[done["config_key"] == key].set_index("concurrency")["speedup"]
        speedups = [
            _fmt(per_c.get(c), 2) + ("x" if c in per_c.index else "") for c in concurrencies
        ]
        table.add_row(str(rank), key, str(row["source"]), _fmt(row["tau"]), *speedups)
        config = SpecConfig(int(row["num_steps"]), int(row["topk"]), int(row["num_draft_tokens"]))
        flags.append(f"#{rank} {key}: " + " ".join(engine.config_flags(config)))
    console.print(table)
    if flags:
        console.print(
            "SGLang flags (config = num_steps-topk-num_draft_tokens, x@c = speedup):",
            highlight=False,
        )
        for line in flags:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    reason = results.get("verdict_reason")
    if reason:
        console.print(reason, highlight=False)
    best = results.get("best")
    if best and best.get("launch_command"):
        console.print("launch:", highlight=False)
        console.print(f"  {best['launch_command']}", highlight=False, soft_wrap=True)
    failed = frame[(frame["state"] == "failed") & (frame["config_key"] != BASELINE_KEY)]
    if not failed.empty:
        console.print(
            f"{failed['config_key'].nunique()} configuration(s) failed; see results.json and logs/",
            highlight=False,
        )
    study = results.get("study", {})
    console.print(
        f"{study.get('measured', '?')} configurations measured "
        f"({outcome.measured_now} in this run) -> {outcome.run_dir.path}",
        highlight=False,
    )
    if outcome.report_path is not None:
        console.print(f"report: {outcome.report_path}", highlight=False)


__all__ = ["print_summary", "sweep"]
