"""``specbench serve-sim``: SGLang's native API backed by the performance model.

Everything after ``--sglang-args`` is taken verbatim as ``sglang.launch_server``
arguments (model path, host, port, TP size, speculative flags; the rest is ignored), so
that the sglang backend can launch serve-sim through ``--launch-cmd "... --sglang-args
{args}"`` with exactly the arguments it would give SGLang.
"""

from __future__ import annotations

from typing import Any

import click

from specbench.cli import options
from specbench.cli.options import CONTEXT_SETTINGS, DEFAULT_HARDWARE, DEFAULT_TARGET, EXIT_CODES
from specbench.limits import check_bounds

SGLANG_ARGS_MARKER = "--sglang-args"
_META_KEY = "specbench.sglang_args"


class _SglangArgsCommand(click.Command):
    """Splits the command line at ``--sglang-args`` before click sees it.

    click cannot express "every remaining argument, options included" for a flag; the
    arguments after the marker would otherwise be read as serve-sim's own ``--port``
    etc. Splitting first keeps both sets intact and leaves stray words an error.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if SGLANG_ARGS_MARKER in args:
            index = args.index(SGLANG_ARGS_MARKER)
            ctx.meta[_META_KEY] = args[index + 1 :]
            args = args[:index]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(
            ctx.command_path, f"[OPTIONS] [{SGLANG_ARGS_MARKER} LAUNCH_SERVER_ARGS...]"
        )


@click.command(
    "serve-sim", cls=_SglangArgsCommand, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES
)
@options.TARGET(
    default_text=f"the preset serving --sglang-args' --model-path, else {DEFAULT_TARGET}"
)
@options.HARDWARE(default=DEFAULT_HARDWARE)
@click.option("--num-steps", type=int, default=None, metavar="N", help="Speculative draft depth.")
@click.option("--topk", type=int, default=None, metavar="N", help="Speculative branching per step.")
@click.option(
    "--num-draft-tokens", type=int, default=None, metavar="N", help="Verified tree nodes."
)
@click.option(
    "--no-speculation",
    is_flag=True,
    help="Serve the baseline (default without numbers: the model card's configuration).",
)
@options.HOST(default="127.0.0.1")
@options.PORT(default=30000)
@click.option(
    "--time-scale",
    type=float,
    default=1.0,
    metavar="FACTOR",
    help="Multiply simulated latencies (0.05 = 20x faster than the model's time).",
)
@options.SEED(default=0, use="Seeds the simulated acceptance draws.")
@click.option(
    "--startup-delay",
    "startup_delay_s",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="Seconds /health_generate answers 503 before the server is ready.",
)
def serve_sim(**kwargs: Any) -> None:
    """Serve SGLang's API backed by the model (no GPU needed).

    Answers /generate, /server_info, /flush_cache and /metrics with SIMULATED latencies
    from the performance model; no model weights needed. Everything after --sglang-args
    is read as sglang.launch_server arguments.
    """
    check_bounds(
        {
            "--port": kwargs["port"],
            "--time-scale": kwargs["time_scale"],
            "--startup-delay": kwargs["startup_delay_s"],
        }
    )
    ctx = click.get_current_context()
    sglang_args = ctx.meta.get(_META_KEY)
    if kwargs["target"] is None and sglang_args is None:
        kwargs["target"] = DEFAULT_TARGET
    # The model and the server's libraries load here: `specbench serve-sim -h` stays fast.
    from specbench.serve_sim.app import serve
    from specbench.serve_sim.options import resolve_options

    serve(resolve_options(sglang_args=sglang_args, **kwargs))
