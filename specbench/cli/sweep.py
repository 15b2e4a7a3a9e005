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

from specbench.cli import options
from specbench.cli.option_sections import SectionedCommand
from specbench.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_CONCURRENCIES,
    DEFAULT_HARDWARE,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_NUM_PROMPTS,
    DEFAULT_READY_TIMEOUT_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_TARGET,
    EXIT_CODES,
)
from specbench.cli.sweep_measure_options import measure_options
from specbench.cli.values import parse_concurrency_list, parse_endpoint
from specbench.errors import BadInputError
from specbench.harness.engines import AUTO, backend_choices, create
from specbench.spec_config import SpecConfig
from specbench.spec_methods import parse_methods
from specbench.sweeps.strategy import STRATEGIES

#: The help's sections, by Python parameter name (tests/cli/test_option_sections.py holds
#: every option to one of them).
SECTIONS = (
    ("What is measured", ("target", "methods", "hardware", "prior_hardware", "tp", "backend")),
    ("Workload", ("dataset", "max_new_tokens", "num_prompts", "apply_chat_template")),
    (
        "Load",
        (
            "concurrencies",
            "load",
            "arrival",
            "max_concurrency",
            "slo",
            "adaptive",
            "request_timeout_s",
            "repeats",
            "prune",
        ),
    ),
    (
        "Search",
        (
            "strategy",
            "sampler",
            "configs",
            "space",
            "trials",
            "budget_minutes",
            "seed",
            "sim_perturbation",
            "retry_failed",
            "stop_when_settled",
        ),
    ),
    (
        "Engine (launched or attached servers)",
        (
            "endpoint",
            "baseline_endpoint",
            "launch_cmd",
            "server_args",
            "host",
            "ready_timeout_s",
            "launch_time_estimate_s",
            "no_config_check",
        ),
    ),
    (
        "Output and storage",
        ("out", "storage", "storage_retry_s", "study_name", "keep_chunks", "no_report", "as_json"),
    ),
)


def _concurrencies(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    """``1,8,32`` -> (1, 8, 32); the first is the primary concurrency, so order matters
    (a repeat is refused with the other option checks, in sweeps.options)."""
    return tuple(parse_concurrency_list(text))


def _load(ctx: click.Context, param: click.Parameter, text: str | None) -> str | None:
    """``--load`` checked where it enters (one line, exit 2); the sweep resolves it."""
    if text is not None:
        from specbench.harness.loads import parse_load

        parse_load(text)
    return text


def _slo(ctx: click.Context, param: click.Parameter, text: str | None) -> str | None:
    if text is not None:
        from specbench.harness.slo import parse_objectives

        parse_objectives(text)
    return text


def _loads_and_concurrencies(ctx: click.Context, values: dict[str, Any]) -> None:
    """``--concurrency`` is ``--load concurrency:``'s short form; with a rate load and no
    ``--concurrency`` the closed loop is narrowed to 1 (tau and single-stream speed); a
    ramp's search measures its phases' concurrencies, lowest first (the per-load picks
    the ramp's candidates and the written adaptive config come from)."""
    load = values.get("load")
    if load is None:
        return
    given = ctx.get_parameter_source("concurrencies") not in (
        click.core.ParameterSource.DEFAULT,
        None,
    )
    if load.strip().startswith("concurrency"):
        if given:
            raise BadInputError(
                "--concurrency is the short form of --load concurrency:...; give one of them"
            )
        return
    if not given and load.strip().startswith("ramp"):
        from specbench.harness.loads import RampLoad, parse_load

        parsed = parse_load(load)
        ramp = parsed[0] if isinstance(parsed, list) else None
        assert isinstance(ramp, RampLoad)  # a ramp: parse_load's contract
        values["concurrencies"] = tuple(sorted(set(ramp.phases)))
    elif not given:
        values["concurrencies"] = (1,)


def _endpoint(ctx: click.Context, param: click.Parameter, text: str | None) -> str | None:
    """A URL checked for shape before anything connects (``--endpoint notaurl``)."""
    return (
        None if text is None else parse_endpoint(text, option=f"--{param.name}".replace("_", "-"))
    )


def _configs(
    ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]
) -> tuple[SpecConfig, ...]:
    return tuple(SpecConfig.parse_list(texts))


def _methods(
    ctx: click.Context, param: click.Parameter, text: str | None
) -> tuple[str, ...] | None:
    return None if text is None else parse_methods(text)


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


@click.command(
    "sweep",
    cls=SectionedCommand,
    sections=SECTIONS,
    context_settings=CONTEXT_SETTINGS,
    epilog=EXIT_CODES,
)
@options.TARGET(default=DEFAULT_TARGET)
@click.option(
    "--backend",
    type=click.Choice(backend_choices()),
    default="auto",
    help="auto: SGLang when --endpoint is given or a GPU and sglang are present, "
    "else the SIMULATED backend. vllm: launch (or attach to) vLLM servers; vLLM "
    "drafts a chain, so only the chain length k (num_steps, topk 1) is searched.",
)
@options.HARDWARE(
    default_text=f"{DEFAULT_HARDWARE} for the sim backend",
    use="The simulated truth for --backend sim, and the model prior's hardware.",
)
@click.option(
    "--prior-hardware",
    default=None,
    metavar="PROFILE|PROBE_JSON",
    show_default="--hardware",
    help="Hardware the model prior assumes.",
)
@click.option(
    "--endpoint",
    default=None,
    metavar="URL",
    callback=_endpoint,
    help="Attach to a running server (SGLang, or vLLM with --backend vllm) and measure "
    "only its configuration.",
)
@click.option(
    "--baseline-endpoint",
    default=None,
    metavar="URL",
    callback=_endpoint,
    help="With --endpoint: a server without speculation to compute speedup against.",
)
@click.option(
    "--launch-cmd",
    default=None,
    metavar="CMD",
    show_default="python -m sglang.launch_server; vLLM: python -m vllm.entrypoints.openai.api_server",
    help="Command that launches the engine ({args}: its arguments, {cmd}: the whole command).",
)
@click.option(
    "--server-args",
    default=None,
    callback=_split_args,
    metavar="ARGS",
    help="Extra server arguments (one string), given to every server, baseline included.",
)
@click.option(
    "--apply-chat-template",
    is_flag=True,
    help="OpenAI-style engines (vLLM): send every prompt through /v1/chat/completions "
    "so the server applies the model's chat template (prompts given as messages always are).",
)
@options.TP(default_text="the target preset's")
@click.option(
    "--ready-timeout",
    "ready_timeout_s",
    type=float,
    default=DEFAULT_READY_TIMEOUT_S,
    metavar="SECONDS",
    help="Seconds to wait for a launched server to become ready.",
)
@click.option(
    "--dataset",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    show_default="the built-in chat/code/math mix",
    help="Prompts as JSONL ({'prompt': ...}) or ShareGPT JSON.",
)
@click.option(
    "--max-new-tokens",
    type=int,
    default=DEFAULT_MAX_NEW_TOKENS,
    metavar="N",
    help="Tokens generated per request (the same for every configuration).",
)
@click.option(
    "--num-prompts",
    type=int,
    default=DEFAULT_NUM_PROMPTS,
    metavar="N",
    help="Prompts per load, mixed across domains.",
)
@options.CONCURRENCY(
    param="concurrencies",
    default=",".join(map(str, DEFAULT_CONCURRENCIES)),
    callback=_concurrencies,
    use="The search optimises the first.",
)
@click.option(
    "--load",
    default=None,
    metavar="KIND:VALUES",
    callback=_load,
    show_default="the --concurrency values",
    help="concurrency:1,8,32 (closed loop, as --concurrency), rate:0.5,2,8 (requests/s "
    "sent whatever the server does: open loop) or sweep[:N] (the baseline's saturation "
    "rate first, then N rates up to it), or ramp:1,8,32,8,1 (phases of closed-loop "
    "load in turn on one server per candidate, after the search). Rate loads come after "
    "a closed loop at --concurrency (1 unless given).",
)
@click.option(
    "--arrival",
    type=click.Choice(["poisson", "constant"]),
    default=None,
    show_default="poisson",
    help="How a rate load spreads its requests: exponential gaps (independent users) or "
    "one every 1/rate s; seeded by --seed, the same for every configuration.",
)
@click.option(
    "--max-concurrency",
    type=int,
    default=None,
    metavar="N",
    help="Requests a rate load keeps in flight at most; a request due above it waits in "
    "the client (as vllm bench serve's --max-concurrency).",
)
@click.option(
    "--slo",
    default=None,
    metavar="NAME=MS[,...]",
    callback=_slo,
    help="Latency objectives of rate loads, e.g. ttft_p99_ms=2000,tpot_p99_ms=50 (ttft, "
    "tpot, itl, e2e at p50, p90, p99): goodput counts requests within all of them, and "
    "with --load sweep each configuration's highest rate within them is searched.",
)
@click.option(
    "--adaptive",
    is_flag=True,
    default=False,
    help="After the search, measure the engine's default adaptive speculation and the "
    "config written from this run (specbench export) beside the best static "
    "configuration and no speculation, over --load ramp (else the concurrencies in "
    "order) on one server each (launched or simulated; not with --endpoint).",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=None,
    show_default="optuna; fixed with --endpoint",
    help="optuna: model-guided search; grid: every valid "
    "configuration; fixed: only the --config ones.",
)
@click.option(
    "--sampler",
    type=click.Choice(["tpe", "gp"]),
    default="tpe",
    help="Optuna sampler of --strategy optuna.",
)
@options.CONFIG(
    param="configs", callback=_configs, use="With --strategy fixed: the ones to measure."
)
@click.option(
    "--method",
    "methods",
    default=None,
    metavar="LIST",
    callback=_methods,
    help="Speculative methods to compare, e.g. 'eagle3,draft_model,ngram' (each needs its "
    "draft in the preset; with --strategy grid; default: the preset's own).",
)
@click.option(
    "--space",
    default=None,
    metavar="SPEC",
    help="Narrow the search, e.g. 'num_steps=2..5,topk=1|4|8,num_draft_tokens=4..32'.",
)
@click.option(
    "--trials",
    type=int,
    default=None,
    metavar="N",
    show_default="30 for optuna; all for grid",
    help="Configurations to measure in the study.",
)
@click.option(
    "--budget-minutes",
    type=float,
    default=None,
    metavar="MINUTES",
    help="Stop starting new configurations after this many minutes (one always runs).",
)
@options.SEED(default=0, use="Seeds the search and the simulated backend.")
@options.OUT(
    type=click.Path(path_type=Path),
    default_text="runs/<time>-<target>-<hardware>/",
    use="A run directory; run again with the same --out to resume.",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    show_default="a journal file in the run directory",
    help="Optuna storage: postgresql://... to share a study between hosts.",
)
@click.option(
    "--storage-retry",
    "storage_retry_s",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for a --storage database that stops answering, then stop "
    "(0: stop at once; the same command resumes).",
)
@click.option(
    "--study-name",
    default=None,
    metavar="NAME",
    help="Study name; workers sharing one study use the same.",
)
@click.option(
    "--sim-perturbation",
    type=float,
    default=0.0,
    metavar="FRACTION",
    help="Move the simulated truth away from the model prior by this much (0: the sim is "
    "the calibrated model; >0 rehearses a search whose prior is wrong).",
)
@click.option(
    "--request-timeout",
    "request_timeout_s",
    type=float,
    default=DEFAULT_REQUEST_TIMEOUT_S,
    show_default=True,
    help="Seconds one request may take before it counts as failed (a hung server).",
)
@click.option(
    "--keep-chunks",
    is_flag=True,
    help="Keep every inter-token latency in requests.jsonl (default: per-request "
    "p50/p90/p99 only, which keeps run directories small).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="On resume, measure again the configurations whose trial failed.",
)
@click.option("--no-report", is_flag=True, help="Do not render report.html.")
@options.JSON(param="as_json")
@measure_options
def sweep(strategy: str | None, no_report: bool, as_json: bool, **values: Any) -> None:
    """Measure tau and speedup over configurations and concurrencies.

    Without GPUs (or with --backend sim) every number is SIMULATED by the performance
    model and labelled so. The run directory keeps every result; the same command with
    the same --out resumes it.
    """
    _loads_and_concurrencies(click.get_current_context(), values)
    # Values are checked once, by the option groups (sweeps.options.check_options).
    if values["endpoint"] is not None and strategy is not None:
        raise BadInputError(
            f"--endpoint measures only the attached server's configuration; drop --strategy {strategy}"
        )
    # The libraries load here, not at import: `specbench sweep -h` stays fast.
    from rich.console import Console

    from specbench.cli.next_steps import run_next_steps
    from specbench.cli.sweep_summary import failed_configurations, print_summary
    from specbench.report.html import render_report
    from specbench.schema import dumps
    from specbench.sweeps.options import SweepOptions
    from specbench.sweeps.progress import RichProgress
    from specbench.sweeps.runner import run_sweep

    # The engine is an object from here on; auto is resolved by set_up, which knows
    # whether an endpoint is attached and what this machine can run.
    if values["backend"] != AUTO:
        values["backend"] = create(values["backend"])
    sweep_options = SweepOptions(
        **values,
        strategy=strategy or ("fixed" if values["endpoint"] is not None else "optuna"),
        report=not no_report,
        command=("specbench", *sys.argv[1:]),
    )
    err = Console(stderr=True)
    with RichProgress(err) as progress, _sigterm_as_interrupt():
        outcome = run_sweep(sweep_options, progress, render_report=render_report)
    for note in outcome.notes:
        if note.startswith("report.html skipped"):
            err.print(note, highlight=False)
    if as_json:
        summary = {k: v for k, v in outcome.results.items() if k != "trials"}
        summary["run_dir"] = str(outcome.run_dir.path)
        summary["report"] = str(outcome.report_path) if outcome.report_path else None
        click.echo(dumps(summary))
        return
    console = Console()
    print_summary(console, outcome)
    from specbench.rundir.ramp import read_ramp

    ramp = read_ramp(outcome.run_dir.path)
    if ramp is not None and (sweep_options.ramp or sweep_options.adaptive):
        console.print(ramp["answer"], highlight=False, soft_wrap=True)
    for line in run_next_steps(
        argv=sweep_options.command,
        run_dir=outcome.run_dir.path,
        report=outcome.report_path,
        failed=failed_configurations(outcome),
    ):
        console.print(line, highlight=False, soft_wrap=True)


__all__ = ["SECTIONS", "sweep"]
