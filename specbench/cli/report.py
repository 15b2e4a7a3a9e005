"""`specbench report RUN_DIR [RUN_DIR...]`: one run's report, or several side by side."""

from __future__ import annotations

from pathlib import Path

import click

from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.errors import BadInputError
from specbench.outpaths import check_output_file

#: The report's formats (specbench.report.html.FORMATS; tests/cli/test_options.py holds
#: them equal), here so that `specbench report -h` does not import matplotlib.
FORMATS = ("html", "md")


@click.command("report", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False)
)
@click.option(
    "-o",
    "--out",
    "--output",
    "output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="File to write (default: RUN_DIR/report.html, report.md with --format md, or "
    "FIRST_RUN_DIR/comparison.html for several runs).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="html",
    help="html: the full self-contained report; md: a short summary for CI job summaries.",
)
def report(run_dirs: tuple[Path, ...], output: Path | None, fmt: str) -> None:
    """Render the report of a run directory, or several runs side by side.

    With several run directories, one HTML page puts them side by side (the NVLink box
    and the PCIe box, two engine versions); runs that replayed another workload are
    refused. Prints the path of the file written.
    """
    # matplotlib and pandas load here, not at import: `specbench report -h` stays fast.
    from specbench.report.html import render_report
    from specbench.report.side_by_side import render_side_by_side

    # Checked before the runs are read: a report of a large run takes seconds to build.
    if output is not None:
        check_output_file(output, option="-o")
    elif len(run_dirs) == 1 and run_dirs[0].is_dir():
        check_output_file(run_dirs[0] / f"report.{fmt}", option="RUN_DIR")
    if len(run_dirs) == 1:
        path = render_report(run_dirs[0], output, fmt=fmt)
    elif fmt != "html":
        raise BadInputError("several runs side by side are an HTML report; drop --format md")
    else:
        path = render_side_by_side(run_dirs, output)
        if output is None:
            # A file appearing inside someone's run directory is a surprise unless said.
            click.echo(
                f"comparison of {len(run_dirs)} runs written into the first run's folder "
                f"{run_dirs[0]} (--out FILE writes it elsewhere)",
                err=True,
            )
    click.echo(str(path))
