"""The console end of ``specbench sweep``: the top table, the flags to paste, the verdict.

Apart from the command's option declarations (specbench/cli/sweep.py) because it needs
pandas and rich, which ``specbench sweep -h`` must not import.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from specbench.cli.terminal import print_table
from specbench.harness.engines import launch_engine_of
from specbench.rundir.lossless import describe_losslessness
from specbench.rundir.summary import summary_lines
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.sweeps.runner import SweepOutcome

#: Rows of the final table.
TOP_ROWS = 5


def failed_configurations(outcome: SweepOutcome) -> int:
    frame = outcome.trials
    failed = frame[(frame["state"] == "failed") & (frame["config_key"] != BASELINE_KEY)]
    return int(failed["config_key"].nunique())


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


def _speedup(value: Any) -> str:
    """``1.84x``, or ``-`` where no speedup exists (no baseline, not measured)."""
    text = _fmt(value, 2)
    return text if text == "-" else f"{text}x"


def rate_lines(rates: Any) -> list[str]:
    """The request-rate headline (SLO-rates side by side) and the pick at each rate, as
    results.json "rates" records them; nothing for a run without rate loads."""
    if not isinstance(rates, dict) or not rates.get("rows"):
        return []
    lines = []
    if rates.get("headline"):
        lines.append(f"rates: {rates['headline']}")
    for pick in rates.get("per_load", []):
        gain = pick.get("gain")
        versus = f" ({gain:.2f}x no speculation's {pick['by']})" if gain else ""
        who = "no speculation" if pick["config_key"] == BASELINE_KEY else pick["config_key"]
        lines.append(f"  at {float(pick['rate_per_s']):.3g} req/s: {who}{versus}")
    flagged = sum(1 for r in rates["rows"] if r.get("flags"))
    if flagged:
        lines.append(f"  {flagged} rate load(s) flagged (shortfall or slow client): see the report")
    return lines


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
    engine = launch_engine_of(outcome.backend)
    flags: list[str] = []
    for rank, (_, row) in enumerate(primary_rows.head(TOP_ROWS).iterrows(), start=1):
        key = str(row["config_key"])
        per_c = done[done["config_key"] == key].set_index("concurrency")["speedup"]
        speedups = [_speedup(per_c.get(c)) for c in concurrencies]
        table.add_row(str(rank), key, str(row["source"]), _fmt(row["tau"]), *speedups)
        config = SpecConfig.from_fields(row.to_dict())
        numbers = (
            f"num_speculative_tokens {config.num_steps}"
            if engine.chain_only
            else " ".join(engine.config_flags(config))
        )
        flags.append(f"#{rank} {key}: {numbers}")
    print_table(console, table, "--json")
    if flags:
        what = (
            "the chain length in --speculative-config; whole launch lines below"
            if engine.chain_only
            else "flags"
        )
        console.print(
            f"{engine.name} {what} (config = num_steps-topk-num_draft_tokens, x@c = speedup):",
            highlight=False,
        )
        for line in flags:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    for line in rate_lines(results.get("rates")):
        console.print(line, highlight=False, soft_wrap=True)
    # The verdict, per-load picks and launch lines exactly as results.json records them.
    for line in summary_lines(results):
        console.print(line, highlight=False, soft_wrap=True)
    lossless = results.get("losslessness")
    if isinstance(lossless, dict) and lossless.get("checked"):
        console.print(describe_losslessness(lossless), highlight=False, soft_wrap=True)
    failed = failed_configurations(outcome)
    if failed:
        console.print(
            f"{failed} configuration(s) failed; see {outcome.run_dir.path / 'results.json'} "
            f"and {outcome.run_dir.path / 'logs'}",
            highlight=False,
        )
    measured = results.get("study", {}).get("measured", "?")
    noun = "configuration" if measured == 1 else "configurations"
    console.print(
        f"{measured} {noun} measured ({outcome.measured_now} in this run) -> "
        f"{outcome.run_dir.path}",
        highlight=False,
    )


__all__ = ["TOP_ROWS", "failed_configurations", "print_summary", "rate_lines"]
