"""`specbench calibrate RUN_DIR`: fit the draft's acceptance to a measured run.

Reads the run directory's per-position acceptance (``acceptance/*.json``: vLLM's
per-position counters, or acceptance histograms) of one chain configuration, fits the
acceptance model to it (``specbench.model.calibrate``), writes the fitted draft profile,
and shows how well the fit predicts every other chain length the run measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from specbench.cli import options
from specbench.cli.options import CONTEXT_SETTINGS, EXIT_CODES
from specbench.errors import BadInputError

if TYPE_CHECKING:
    from specbench.rundir.layout import RunDirectory


def _domain(run: RunDirectory) -> str | None:
    """The run's single text domain, or None (the model's mix) when it has several."""
    from specbench.model.targets import DOMAINS

    domains = {r.domain for r in run.iter_requests()} if run.requests_path.exists() else set()
    if len(domains) == 1 and (only := domains.pop()) in DOMAINS:
        return only
    return None


def calibrate_run(run_dir: Path, fit_keys: tuple[str, ...], out: Path | None) -> dict[str, Any]:
    """Fit on ``fit_keys`` (default: every chain the run measured); the summary printed."""
    # numpy, scipy and pandas load here, not at import: `specbench calibrate -h` stays fast.
    import numpy as np

    from specbench.model import load_target
    from specbench.model.calibrate import ChainCounts, fit_acceptance, prediction_intervals
    from specbench.model.draft_profile import write_draft_profile
    from specbench.model.targets import DOMAINS
    from specbench.rundir.acceptance import pooled_chain_counts
    from specbench.rundir.layout import RunDirectory

    run = RunDirectory(run_dir)
    if not run.exists():
        raise BadInputError(f"{run.path}: not a run directory (no manifest.json)")
    manifest = run.read_manifest()
    chains = pooled_chain_counts(run)
    if not chains:
        raise BadInputError(
            f"{run.path} holds no per-position acceptance of a chain (topk 1) configuration "
            "(measure one with --backend vllm, or SGLang with spec_accept_histogram)"
        )
    keys = fit_keys or tuple(sorted(chains))
    missing = [k for k in keys if k not in chains]
    if missing:
        raise BadInputError(
            f"{run.path} has no acceptance data for {', '.join(missing)} "
            f"(measured chains: {', '.join(sorted(chains))})"
        )
    target = load_target(manifest.target)
    counts = [
        ChainCounts(round(chains[k]["drafts"]), tuple(chains[k]["accepted_per_position"]))
        for k in keys
    ]
    domain = _domain(run)
    result = fit_acceptance(target, counts, domain=domain, name=f"{target.name}-calibrated")
    path = out or run.path / "draft-profile.json"
    write_draft_profile(path, result.profile)
    by_domain = dict(result.profile.acceptance)
    names = DOMAINS if domain is None else (domain,)
    measured = {
        int(entry["k"]): ChainCounts(round(entry["drafts"]), tuple(entry["accepted_per_position"]))
        for entry in chains.values()
    }
    intervals = prediction_intervals(target, counts, measured, domain=domain)
    predictions = []
    for key, entry in sorted(chains.items(), key=lambda kv: kv[1]["k"]):
        k = int(entry["k"])
        rates = np.mean([by_domain[d].chain_acceptance(k) for d in names], axis=0)
        predicted = 1.0 + float(rates.sum())
        low, high = intervals[k]
        predictions.append(
            {
                "config_key": key,
                "k": k,
                "fitted_on": key in keys,
                "measured_tau": entry["tau"],
                "predicted_tau": predicted,
                # 95%: where a measurement of this chain should fall, fit error included
                "predicted_tau_interval": [low, high],
                "within_interval": low <= entry["tau"] <= high,
                "relative_error": predicted / entry["tau"] - 1.0,
            }
        )
    return {
        "profile": str(path),
        "fitted_on": list(keys),
        "domain": domain or "mix",
        "accept_rate_position_1": result.accept_rate,
        "depth_decay": result.depth_decay,
        "predictions": predictions,
    }


@click.command("calibrate", context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--fit-config",
    "fit_keys",
    multiple=True,
    metavar="KEY",
    help="Chain configuration to fit on, e.g. 2-1-3 (repeatable; default: every chain measured).",
)
@options.OUT(
    type=click.Path(path_type=Path, dir_okay=False),
    use="The fitted draft profile (JSON).",
    default_text="RUN_DIR/draft-profile.json",
)
@options.JSON(param="as_json")
def calibrate(run_dir: Path, fit_keys: tuple[str, ...], out: Path | None, as_json: bool) -> None:
    """Fit the acceptance model to RUN_DIR's per-position acceptance."""
    summary = calibrate_run(run_dir, fit_keys, out)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"fitted on {', '.join(summary['fitted_on'])} ({summary['domain']}): position-1 "
        f"acceptance {summary['accept_rate_position_1']:.3f}, depth decay "
        f"{summary['depth_decay']:.3f} -> {summary['profile']}"
    )
    for row in summary["predictions"]:
        mark = "fit" if row["fitted_on"] else "predicted"
        low, high = row["predicted_tau_interval"]
        click.echo(
            f"  {row['config_key']}: measured tau {row['measured_tau']:.3f}, model "
            f"{row['predicted_tau']:.3f} [{low:.3f}-{high:.3f}] "
            f"({100 * row['relative_error']:+.1f}%, {mark})"
        )


__all__ = ["calibrate", "calibrate_run"]
