"""`specbench export RUN_DIR --engine sglang|vllm`: the run as adaptive speculation.

Writes the engine's own file for speculation that follows the batch size (SGLang's
``--speculative-adaptive-config`` JSON, vLLM's per-batch-size table inside
``--speculative-config``) from the run's per-load results, and prints the full launch
line. ``--check FILE`` instead applies the engine's loader rules to a file written by
hand. Either way a file the engine would refuse is one line and exit 2, before any
server is launched.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from specbench.cli import options
from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.errors import BadInputError

#: Engines with an adaptive format (EngineAdapter.adaptive; tests/cli/test_export.py
#: holds them equal), named here so that `specbench export -h` imports no engine.
ENGINES = ("sglang", "vllm")


@click.command("export", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.argument("run_dir", required=False, type=click.Path(path_type=Path, file_okay=False))
@options.ENGINE(
    type=click.Choice(ENGINES),
    use="Its adaptive format is written: sglang (--speculative-adaptive-config FILE) or "
    "vllm (num_speculative_tokens_per_batch_size in --speculative-config). Required.",
)
@options.OUT(
    type=click.Path(path_type=Path, dir_okay=False),
    use="The engine's config file (JSON).",
    default_text="RUN_DIR/adaptive-ENGINE.json",
)
@click.option(
    "--check",
    "check",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    metavar="FILE",
    help="Check FILE against the engine's loader rules instead of exporting a run.",
)
@options.JSON(param="as_json")
def export(
    run_dir: Path | None, engine: str | None, out: Path | None, check: Path | None, as_json: bool
) -> None:
    """Write a run's per-load results as an engine's adaptive speculation config."""
    if engine is None:
        raise BadInputError(f"missing --engine ({' or '.join(ENGINES)})")
    # pandas loads here, not at import: `specbench export -h` stays fast.
    from specbench.export.adaptive import check_adaptive_file, export_adaptive

    if check is not None:
        if run_dir is not None:
            raise BadInputError("give RUN_DIR or --check FILE, not both")
        check_adaptive_file(check, engine)
        click.echo(f"{check}: {engine} accepts it")
        return
    if run_dir is None:
        raise BadInputError("missing RUN_DIR (or --check FILE)")
    done = export_adaptive(run_dir, engine, out)
    if as_json:
        click.echo(json.dumps(done.to_json(), indent=2))
        return
    for line in done.summary_lines():
        click.echo(line)


__all__ = ["ENGINES", "export"]
