"""`specbench report RUN_DIR`: render the HTML (or Markdown) report of a run."""

from __future__ import annotations

from pathlib import Path

import click

from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.outpaths import check_output_file
from specbench.report.html import FORMATS, render_report


@click.command("report", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File to write (default: RUN_DIR/report.html, or report.md with --format md).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="html",
    help="html: the full self-contained report; md: a short summary for CI job summaries.",
)
def report(run_dir: Path, output: Path | None, fmt: str) -> None:
    """Render the HTML (or Markdown) report of a run directory.

    Prints the path of the file written.
    """
    # Checked before the run is read: a report of a large run takes seconds to build.
    if output is not None:
        check_output_file(output, option="-o")
    elif run_dir.is_dir():
        check_output_file(run_dir / f"report.{fmt}", option="RUN_DIR")
    path = render_report(run_dir, output, fmt=fmt)
    click.echo(str(path))
