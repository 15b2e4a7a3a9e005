"""``specbench probe``: measure the interconnect (thin wrapper over specbench.topology)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from specbench.cli import options
from specbench.cli.next_steps import probe_next_steps
from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.errors import BadInputError
from specbench.schema import dumps, write_json

F = TypeVar("F", bound=Callable[..., Any])


def _options(fn: F) -> F:
    decorators = [
        click.option(
            "--world-size",
            type=int,
            default=None,
            metavar="N",
            show_default="the number of GPUs; 2 for gloo",
            help="Ranks per all-reduce.",
        ),
        click.option(
            "--sizes",
            default=None,
            metavar="SIZE[,SIZE...]",
            show_default="2K..256M",
            help="All-reduce message sizes, e.g. 2K,64K,1M.",
        ),
        click.option(
            "--backends",
            default=None,
            metavar="NAME[,NAME...]",
            show_default="all that fit this host",
            help="Comma list of nccl, nccl-host-staged, gloo.",
        ),
        click.option(
            "--iters",
            type=int,
            default=None,
            metavar="N",
            show_default="100; 50 with --quick",
            help="Most timed iterations per size.",
        ),
        click.option("--quick", is_flag=True, help="Fewer sizes and iterations (a few seconds)."),
        options.JSON(param="as_json"),
        options.OUT(
            type=click.Path(dir_okay=False, path_type=Path),
            use="A JSON file, which `--hardware` of predict and sweep accepts.",
        ),
        click.option("--no-measure", is_flag=True, help="Inventory only; no all-reduce runs."),
        click.option(
            "--nvml-from",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            hidden=True,
            help="Read the inventory from a recorded topology JSON (for tests).",
        ),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, int], Callable[[], None]] | None]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        # A redirected stderr (CI logs) gets no bar: rich would only print its last frame.
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )

    def add(description: str, total: int) -> Callable[[], None]:
        task = progress.add_task(description, total=total)
        return lambda: progress.advance(task)

    with progress:
        yield add


def _run(
    world_size: int | None,
    sizes: str | None,
    backends: str | None,
    iters: int | None,
    quick: bool,
    as_json: bool,
    out: Path | None,
    no_measure: bool,
    nvml_from: Path | None,
) -> None:
    # torch, numpy and rich load here, not at import: `specbench probe -h` stays fast.
    from rich.console import Console

    from specbench.topology import (
        ProbeOptions,
        RecordedNvml,
        parse_backends,
        parse_sizes,
        run_probe,
    )
    from specbench.topology.fit import poor_fits
    from specbench.topology.probe import check_writable
    from specbench.topology.render import render

    options = ProbeOptions(
        world_size=world_size,
        sizes=parse_sizes(sizes) if sizes is not None else None,
        backends=parse_backends(backends) if backends is not None else None,
        iters=iters,
        quick=quick,
        measure=not no_measure,
        source=RecordedNvml.load(nvml_from) if nvml_from is not None else None,
    )
    if out is not None:
        check_writable(out)
    with _progress_bar(not no_measure) as progress:
        result = run_probe(options, progress)
    payload = result.to_json()
    # Show the result before writing it: if the write fails, the numbers are not lost.
    if as_json:
        click.echo(dumps(payload))
    else:
        render(result, Console())
    if out is not None:
        try:
            write_json(out, payload)
        except OSError as exc:
            raise BadInputError(f"--out {out}: {exc.strerror or exc}") from None
        if not as_json:
            click.echo(f"wrote {out}")
    # The last lines say what the numbers are good for and when not to trust them;
    # with --json they go to stderr so that stdout stays one JSON document.
    for line in probe_next_steps(
        interconnect_class=str(result.classification.interconnect_class),
        poor_fits=[fit.describe() for fit in poor_fits(result.fits)],
        out=out,
    ):
        click.echo(line, err=as_json)


@click.group(invoke_without_command=True, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@_options
@click.pass_context
def probe(ctx: click.Context, /, **kwargs: Any) -> None:
    """Measure the interconnect: NVML, P2P and all-reduce curves.

    Reads the NVML inventory and P2P matrix, times all-reduce for each transport and
    fits latency + bytes/bandwidth. Without a subcommand this is `specbench probe run`.
    """
    if ctx.invoked_subcommand is None:
        _run(**kwargs)


@probe.command("run", epilog=EXIT_CODES)
@_options
@click.pass_context
def run(ctx: click.Context, /, **kwargs: Any) -> None:
    """Inventory, all-reduce timings, fits and the interconnect class."""
    # `specbench probe --quick run` means the same as `specbench probe run --quick`.
    parent = ctx.parent.params if ctx.parent is not None else {}
    _run(**{k: parent.get(k, v) if v in (None, False) else v for k, v in kwargs.items()})


@probe.command("record", epilog=EXIT_CODES)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def record(out: Path) -> None:
    """Save this host's NVML topology to OUT, a JSON test fixture."""
    from specbench.topology import record_source
    from specbench.topology.nvml import PynvmlSource
    from specbench.topology.probe import check_writable

    check_writable(out)
    source = PynvmlSource()
    try:
        data = record_source(source)
    finally:
        source.close()
    import json

    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}" + (f" ({data['unavailable']})" if data["unavailable"] else ""))
