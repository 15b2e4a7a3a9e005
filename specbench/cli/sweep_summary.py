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
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.sweeps.runner import SweepOutcome
from specbench.verdict.candidates import Candidate
from specbench.verdict.decision import Decision
from specbench.verdict.text import decision_lines

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


def _at(decision: Decision, config: SpecConfig, concurrency: int) -> float | None:
    cand = decision.candidate(config, concurrency)
    return None if cand is None else cand.speedup


def _mark(decision: Decision, cand: Candidate, fastest: Candidate | None) -> str:
    """What a row is to the decision: the pick, or a tree the data cannot tell from the
    fastest (the pick is the cheapest of those)."""
    if decision.config is not None and cand.config == decision.config:
        return "<- pick"
    if fastest is not None and fastest.pays and cand.pays and cand.speedup >= fastest.ci[0]:
        return "within noise"
    return ""


def print_summary(console: Console, outcome: SweepOutcome) -> None:
    """The decision's ranking with tau and speedup per concurrency, the flags to paste,
    and the decision itself, all read from the decision results.json stores."""
    results = outcome.results
    decision = Decision.from_results(results)
    if decision is None:
        return
    concurrencies = [int(c) for c in results["concurrencies"]]
    primary = decision.primary
    sim = "SIMULATED " if outcome.simulated else ""
    table = Table(
        title=f"{sim}top configurations at concurrency {primary} (the pick first, then by speedup)"
    )
    table.add_column("#", justify="right")
    table.add_column("config", no_wrap=True)
    table.add_column(f"tau@{primary}", justify="right", no_wrap=True)
    for c in concurrencies:
        table.add_column(f"x@{c}", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    engine = launch_engine_of(outcome.backend)
    flags: list[str] = []
    ranking = decision.ranking()
    fastest = max(ranking, key=lambda x: x.speedup) if ranking else None
    for rank, cand in enumerate(ranking[:TOP_ROWS], start=1):
        speedups = [_speedup(_at(decision, cand.config, c)) for c in concurrencies]
        table.add_row(
            str(rank), cand.key, _fmt(cand.tau), *speedups, _mark(decision, cand, fastest)
        )
        numbers = (
            f"num_speculative_tokens {cand.config.num_steps}"
            if engine.chain_only
            else " ".join(engine.config_flags(cand.config))
        )
        flags.append(f"#{rank} {cand.key}: {numbers}")
    if ranking:
        print_table(console, table, "--json")
    if flags:
        what = (
            "the chain length in --speculative-config; whole launch lines below"
            if engine.chain_only
            else "flags"
        )
        console.print(
            f"{engine.title or engine.name} {what} (config = num_steps-topk-num_draft_tokens, x@c = speedup):",
            highlight=False,
        )
        for line in flags:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    for line in rate_lines(results.get("rates")):
        console.print(line, highlight=False, soft_wrap=True)
    # The decision, per-load picks and launch lines exactly as results.json records them.
    for line in decision_lines(decision):
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
