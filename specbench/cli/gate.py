"""``specbench gate``: fail a CI job on a real tau/speed regression, not on noise.

Thin on purpose: flags are parsed here, the comparison lives in
specbench.gate.compare and the output in specbench.gate.output.
"""

from __future__ import annotations

from pathlib import Path

import click

from specbench.cli import options
from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.cli.values import parse_concurrency_list
from specbench.errors import BadInputError
from specbench.gate.results import DEFAULT_ALPHA, GateOptions, parse_threshold
from specbench.spec_config import SpecConfig


def _concurrencies(values: tuple[str, ...]) -> tuple[int, ...]:
    """Repeatable ``--concurrency 1,8``: a filter, so repeats are merged, not refused."""
    out = [c for value in values for c in parse_concurrency_list(value)]
    return tuple(dict.fromkeys(out))


@click.command("gate", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.option(
    "--baseline",
    "baseline",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR|FILE",
    help="Run directory or baseline file (from --save-baseline) to compare against.",
)
@click.option(
    "--candidate",
    "candidate",
    type=click.Path(path_type=Path),
    metavar="RUN_DIR",
    help="Run directory of the new run.",
)
@options.CONFIG(param="configs", use="Compare only these ('3,4,8;5,4,8' also works).")
@options.CONCURRENCY(
    param="concurrencies", multiple=True, use="Compare only these (the option repeats)."
)
@options.MAX_TAU_DROP(default="3%")
@options.MAX_SPEEDUP_DROP(default="5%")
@options.MAX_TOKENS_PER_S_DROP(default_text="--max-speedup-drop")
@click.option(
    "--max-slo-rate-drop",
    default=None,
    metavar="PCT",
    show_default="--max-speedup-drop",
    help="Tolerated drop of a configuration's highest rate within the SLOs (runs with "
    "--load rate/sweep and --slo); it fails only when the candidate's whole bracket is "
    "below. " + options.THRESHOLD_HELP,
)
@click.option(
    "--alpha",
    type=float,
    default=DEFAULT_ALPHA,
    metavar="P",
    help="Significance level of the one-sided test (signed-rank paired by prompt, else "
    "Mann-Whitney U, else the CI fallback).",
)
@click.option("--force", is_flag=True, help="Compare even when the workload fingerprints differ.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show every compared metric, not only those that changed beyond noise "
    "(also in --junit and --markdown).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write JUnit XML (a test case per shown metric, one for the unchanged rest).",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--save-baseline",
    "save_to",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write RUN_DIR's compact baseline file to this path (to commit) and exit.",
)
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.pass_context
def gate(
    ctx: click.Context,
    baseline: Path | None,
    candidate: Path | None,
    configs: tuple[str, ...],
    concurrencies: tuple[str, ...],
    max_tau_drop: str,
    max_speedup_drop: str,
    max_tokens_per_s_drop: str | None,
    max_slo_rate_drop: str | None,
    alpha: float,
    force: bool,
    verbose: bool,
    junit: Path | None,
    markdown: Path | None,
    save_to: Path | None,
    run_dir: Path | None,
) -> None:
    """CI regression gate on tau and speedup between two runs.

    Exits 1 when a metric drops past its threshold and the drop is significant; prints
    only the metrics that changed beyond noise (--verbose: all). Runs of different
    workloads are not comparable (exit 2).

    \b
    specbench gate --baseline ci/specbench-baseline.json --candidate runs/ci
    specbench gate --save-baseline ci/specbench-baseline.json runs/ci
    """
    # pandas, scipy and rich load here, not at import: `specbench gate -h` stays fast.
    from rich.console import Console

    from specbench.cli.terminal import startup_status
    from specbench.gate.compare import run_gate
    from specbench.gate.inputs import save_baseline
    from specbench.gate.output import print_result, write_junit, write_markdown

    keys = tuple(c.key for c in SpecConfig.parse_list(configs))
    if save_to is not None:
        source = run_dir or candidate
        if source is None:
            raise BadInputError(
                "--save-baseline FILE needs the run directory: --save-baseline FILE RUN_DIR"
            )
        if baseline is not None or (run_dir is not None and candidate is not None):
            raise BadInputError("--save-baseline takes one run directory and no --baseline")
        written = save_baseline(source, save_to, keys)
        click.echo(f"baseline written: {written}")
        return
    if run_dir is not None:
        raise BadInputError(
            f"unexpected argument {str(run_dir)!r}: use --candidate RUN_DIR (or --save-baseline FILE RUN_DIR)"
        )
    if baseline is None or candidate is None:
        raise BadInputError(
            "both --baseline and --candidate are required (or --save-baseline FILE RUN_DIR)"
        )
    options = GateOptions(
        configs=keys,
        concurrencies=_concurrencies(concurrencies),
        max_tau_drop=parse_threshold(max_tau_drop, option="--max-tau-drop"),
        max_speedup_drop=parse_threshold(max_speedup_drop, option="--max-speedup-drop"),
        max_tokens_per_s_drop=(
            None
            if max_tokens_per_s_drop is None
            else parse_threshold(max_tokens_per_s_drop, option="--max-tokens-per-s-drop")
        ),
        max_slo_rate_drop=(
            None
            if max_slo_rate_drop is None
            else parse_threshold(max_slo_rate_drop, option="--max-slo-rate-drop")
        ),
        alpha=alpha,
        force=force,
    )
    with startup_status(Console(stderr=True), "reading both runs and testing every metric"):
        result = run_gate(baseline, candidate, options)
    if junit is not None:
        write_junit(result, junit, verbose=verbose)
    if markdown is not None:
        write_markdown(result, markdown, verbose=verbose)
    print_result(result, verbose=verbose)
    ctx.exit(result.exit_code)
