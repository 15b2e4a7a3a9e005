"""Every number the report shows, computed as plain data before anything is drawn.

The renderers (plots.py, html.py, markdown.py) only format what is here, so the numbers
are tested directly (no parsing of SVG or HTML to check a speedup) and the HTML and the
Markdown summary cannot disagree. Inputs are read through RunDirectory, the one contract
with the sweep; anything optional in a run (no requests yet, no probe, an unknown
target preset) degrades to an empty section with a note, never to a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from specbench.errors import BadInputError, FileFormatError, SpecbenchError
from specbench.harness.engine import Deployment
from specbench.harness.engines import launch_engine_of
from specbench.harness.served_deployment import printed_deployment
from specbench.model import HardwareProfile, TargetPreset, load_hardware, load_target
from specbench.report.adaptive_view import build_adaptive_view
from specbench.report.charts import (
    build_failed,
    build_heatmap,
    build_history,
    build_prediction_check,
    build_speedup_vs_concurrency,
    build_tau_distribution,
    build_tau_vs_draft_tokens,
    build_top,
    build_trial_table,
)
from specbench.report.verdict_section import build_section
from specbench.report.verdict_views import model_config
from specbench.report.views import (
    AllReduceSeries,
    HardwareView,
    Overview,
    ReportData,
    SpeedupPoint,
    VerdictView,
    int_or_none,
)
from specbench.rundir.acceptance import describe_tau_agreement
from specbench.rundir.intervals import RequestBootstrap
from specbench.rundir.layout import Manifest, RunDirectory
from specbench.rundir.lossless import describe_losslessness
from specbench.rundir.records import REQUESTS_KIND, RequestRecord
from specbench.schema import check_schema_version
from specbench.spec_config import BASELINE_KEY, SpecConfig
from specbench.verdict import Decision, decide
from specbench.verdict.candidates import (
    KIND_NO_FIT,
    NOISE_MARGIN,
    config_table,
    finite,
    format_concurrency,
)
from specbench.verdict.decision import (
    STATUS_CROSSES,
    STATUS_NEVER_PAYS,
    STATUS_NO_FIT,
    STATUS_PAYS_EVERYWHERE,
)
from specbench.verdict.defaults import named_defaults
from specbench.verdict.feasibility import Feasibility, with_tp


# --------------------------------------------------------------------------- loading
@dataclass
class RunData:
    """A run directory read once: manifest, trial rows, per-request records."""

    path: Path
    manifest: Manifest
    results: dict[str, Any]
    trials: pd.DataFrame
    requests: list[RequestRecord]
    #: Problems that did not stop the report (torn requests.jsonl, unknown preset...).
    notes: list[str] = field(default_factory=list)
    target: TargetPreset | None = None


def read_run(run_dir: Path | str) -> RunData:
    """Read a run directory; a directory without a manifest is bad input, one line."""
    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise BadInputError(f"{run.path}: no such run directory")
    if not run.exists():
        raise BadInputError(f"{run.path}: not a run directory (no manifest.json)")
    manifest = run.read_manifest()
    results = run.read_results()
    trials = run.read_trials()
    notes: list[str] = []
    requests = _read_requests(run, notes)
    target = _load_target(manifest.target, notes)
    return RunData(run.path, manifest, results, trials, requests, notes, target)


#: The inter-token latency list of a record (a JSON array of numbers, never nested).
#: Inside a JSON string a quote is escaped, so this cannot match string content.
_ITL_FIELD = re.compile(r'"itl_ms":\s*\[[^\]]*\]')


def _read_requests(run: RunDirectory, notes: list[str]) -> list[RequestRecord]:
    """Every readable record; a missing, foreign or torn file is noted, not fatal.

    A sweep killed mid-write leaves a torn last line, and the trials it finished are
    still worth a report. The per-token latency lists, most of the file's bytes, are
    cut before parsing: no view of the report uses them, and parsing them would make a
    200-trial report several times slower.
    """
    path = run.requests_path
    if not path.exists():
        notes.append("requests.jsonl is missing: per-request distributions are not shown.")
        return []
    out: list[RequestRecord] = []
    with path.open(encoding="utf-8") as fh:
        try:
            header = json.loads(fh.readline() or "null")
            if not isinstance(header, dict) or header.get("kind") != REQUESTS_KIND:
                raise FileFormatError(path, "line 1 is not a specbench requests header")
            check_schema_version(path, header)
        except (ValueError, FileFormatError) as exc:
            notes.append(f"requests.jsonl is not readable ({exc}); per-request data is not shown.")
            return []
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                data = json.loads(_ITL_FIELD.sub('"itl_ms": []', line, count=1))
                if not isinstance(data, dict):
                    raise FileFormatError(path, f"line {lineno} is not a JSON object")
                out.append(RequestRecord.from_dict(data, path=f"{path}:{lineno}"))
            except (ValueError, TypeError, FileFormatError) as exc:
                notes.append(
                    f"requests.jsonl was read up to line {lineno}, a bad line ({exc}); "
                    "later records are ignored."
                )
                break
    return out


def _load_target(name: str, notes: list[str]) -> TargetPreset | None:
    try:
        target: TargetPreset = load_target(name)
    except SpecbenchError:
        notes.append(
            f"target {name!r} is not a preset of this specbench: the launch command uses the "
            "model paths recorded in the manifest."
        )
        return None
    return target


# --------------------------------------------------------------------------- builders
def _deployment(run: RunData) -> Deployment:
    """The server the run measured, as its launch lines spell it."""
    manifest = run.manifest
    return printed_deployment(
        manifest.extra,
        Deployment.of(
            run.target,
            tp=int_or_none(manifest.hardware.get("tp")),
            model_path=manifest.workload.target_model or None,
            draft_model_path=manifest.workload.draft_model or None,
        ),
    )


def run_decision(run: RunData) -> Decision:
    """The decision the sweep stored in results.json; a run written before it stored one
    gets the same decision made here, from the same rows and the same rules."""
    stored = Decision.from_results(run.results)
    if stored is not None:
        return stored
    manifest = run.manifest
    tp = int_or_none(manifest.hardware.get("tp"))
    deployment = _deployment(run)
    engine = launch_engine_of(manifest.backend)
    hw_class = str(manifest.hardware.get("interconnect_class", "") or "")
    return decide(
        run.trials,
        list(manifest.concurrencies),
        launch_line=partial(engine.launch_line, deployment),
        plain_launch=engine.baseline_launch_line(deployment),
        intervals=RequestBootstrap(run.requests, seed=manifest.seed),
        defaults=named_defaults(
            run.target,
            sglang=run.target is not None and engine.default_config(run.target) is not None,
        ),
        feasibility=Feasibility(
            engine.check_config,
            run.target,
            _load_profile(str(manifest.hardware.get("name", "") or ""), tp),
            context_tokens=_context_tokens(run),
        ),
        rerun=lambda size: with_tp(manifest.command, size),
        simulated=manifest.simulated,
        hardware_class=hw_class or None,
    )


def build_report_data(run: RunData) -> ReportData:
    manifest = run.manifest
    concurrencies = list(manifest.concurrencies)
    primary = manifest.primary_concurrency
    trials = run.trials
    tp = int_or_none(manifest.hardware.get("tp"))
    decision = run_decision(run)
    table = config_table(trials)
    best_key = decision.config.key if decision.config is not None else None
    # The pick (one tree for mixed load) is what every plot marks, not the top row.
    pick_key = best_key
    section = build_section(
        decision,
        trials,
        concurrencies,
        target=run.target,
        hardware=_load_profile(str(manifest.hardware.get("name", "") or ""), tp),
        context_tokens=_context_tokens(run),
        seed=manifest.seed,
        histograms=_accept_histograms(run, model_config(decision)),
    )
    grid = manifest.strategy in ("grid", "fixed")
    return ReportData(
        simulated=manifest.simulated,
        overview=build_overview(run),
        verdict=build_verdict_view(decision, concurrencies),
        hardware=build_hardware(manifest),
        heatmap=build_heatmap(
            table,
            primary,
            pick=decision.config,
            intervals={c.key: c.ci for c in decision.per_load.get(primary, [])},
        ),
        tau_vs_draft_tokens=build_tau_vs_draft_tokens(table),
        speedup_vs_concurrency=build_speedup_vs_concurrency(trials, primary, include=pick_key),
        tau_distribution=build_tau_distribution(run.requests, best_key),
        # A grid has no search to show; in a SIMULATED run the "measurement" is the model.
        history=None if grid else build_history(trials, primary),
        prediction=None if manifest.simulated else build_prediction_check(trials),
        table=build_trial_table(trials),
        failed=build_failed(trials),
        top=build_top(decision, concurrencies),
        notes=[*engine_checks(run.results), *run.notes],
        verdict_section=section,
        engine_checks=engine_checks(run.results),
        # A run that does not fit prints no launch line anywhere, adaptive ones included.
        adaptive=None
        if decision.kind == KIND_NO_FIT
        else build_adaptive_view(
            run.path,
            trials,
            concurrencies,
            _deployment(run),
            engine=manifest.backend,
        ),
    )


def engine_checks(results: dict[str, Any]) -> list[str]:
    """The losslessness check and the tau agreement with the engine's counters, in
    words (absent from runs that measured neither)."""
    out: list[str] = []
    summary = results.get("losslessness")
    if isinstance(summary, dict) and summary.get("checked"):
        out.append(describe_losslessness(summary))
    rows = results.get("acceptance")
    if isinstance(rows, list):
        agreement = describe_tau_agreement([r for r in rows if isinstance(r, dict)])
        if agreement is not None:
            out.append(agreement)
    return out


def _accept_histograms(run: RunData, config: SpecConfig | None) -> list[list[float]]:
    """Per-request accept histograms of ``config``, where the records carry them
    (SGLang's ``meta_info.spec_accept_histogram``: verify steps by accepted drafts)."""
    if config is None:
        return []
    out = []
    for record in run.requests:
        hist = getattr(record, "spec_accept_histogram", None)
        if record.config_key == config.key and isinstance(hist, list) and hist:
            out.append([float(x) for x in hist])
    return out


def _context_tokens(run: RunData) -> int:
    """Tokens of KV a request holds at its end: mean prompt plus the output budget."""
    prompts = [r.prompt_tokens for r in run.requests if r.prompt_tokens > 0]
    mean_prompt = round(sum(prompts) / len(prompts)) if prompts else 0
    return mean_prompt + int(run.manifest.workload.max_new_tokens)


def build_overview(run: RunData) -> Overview:
    m, trials = run.manifest, run.trials
    spec = trials[trials["config_key"] != BASELINE_KEY]
    numbers = spec.groupby("trial_number")["state"].agg(lambda s: set(s.astype(str)))
    completed = sum(1 for states in numbers if "complete" in states)
    failed = sum(1 for states in numbers if "failed" in states and "complete" not in states)
    study = run.results.get("study")
    study = study if isinstance(study, Mapping) else {}
    search_trials = study.get("optuna_trials")
    reused = study.get("reused")
    return Overview(
        target=m.target,
        backend=m.backend,
        simulated=m.simulated,
        strategy=m.strategy,
        created_at=m.created_at,
        specbench_version=m.specbench_version,
        command=" ".join(m.command),
        concurrencies=list(m.concurrencies),
        primary_concurrency=m.primary_concurrency,
        target_model=m.workload.target_model,
        draft_model=m.workload.draft_model,
        algorithm=m.workload.algorithm,
        dataset=m.workload.dataset,
        num_prompts=m.workload.num_prompts,
        max_new_tokens=m.workload.max_new_tokens,
        workload_digest=m.workload.digest,
        num_trials=len(numbers),
        num_completed=completed,
        num_failed=failed,
        num_requests=len(run.requests),
        search_trials=search_trials if isinstance(search_trials, int) else 0,
        reused=reused if isinstance(reused, int) else 0,
    )


def build_verdict_view(d: Decision, concurrencies: Sequence[int]) -> VerdictView:
    """The verdict's headline fields (the first screen itself is ``verdict_section``)."""
    status = d.status
    points: list[SpeedupPoint] = []
    if d.config is not None:
        for c in sorted(d.concurrencies):
            cand = d.candidate(d.config, c)
            s = None if cand is None else cand.speedup
            pays = None if s is None else s > 1.0 + NOISE_MARGIN
            points.append(SpeedupPoint(c, s, pays))
    be_c = d.break_even
    if status == STATUS_CROSSES and be_c is not None:
        be_text = (
            f"Speculation stops paying above about {format_concurrency(be_c)} concurrent "
            "requests (interpolated between the concurrencies tested)."
        )
    elif status == STATUS_PAYS_EVERYWHERE:
        be_text = (
            "Pays at every concurrency tested; the break-even lies above "
            f"{max(concurrencies)} (not extrapolated)."
        )
    elif status == STATUS_NEVER_PAYS:
        be_text = "No break-even: speculation does not pay at the lowest load tested."
    elif status == STATUS_NO_FIT:
        be_text = "No break-even: the server does not fit in GPU memory at this TP."
    else:
        be_text = "Unknown: no speedup could be computed."
    pick = None if d.config is None else d.candidate(d.config, d.primary)
    return VerdictView(
        decision=d,
        status=status,
        recommended=d.speculation_recommended,
        headline=d.headline.text,
        reason=d.reason,
        config_key=None if d.config is None else d.config.key,
        tau=None if pick is None else pick.tau,
        speedup=None if pick is None else pick.speedup,
        launch_command=d.launch or None,
        flags=" ".join(d.flags) if d.flags else None,
        points=points,
        break_even=be_c,
        break_even_text=be_text,
    )


def build_hardware(manifest: Manifest) -> HardwareView:
    """Class, evidence and the all-reduce curve, from whatever the manifest carries.

    The probe may be embedded (``hardware.probe``), referenced by path
    (``hardware.probe_path``, or ``origin`` as the sweep records it), or absent (a shipped profile: its fitted curve is shown
    and labelled as a model input, not a measurement).
    """
    hw = dict(manifest.hardware)
    probe = hw.get("probe")
    if not isinstance(probe, Mapping):
        # A probe-based profile records the probe file as its origin.
        probe = _read_probe_file(hw.get("probe_path") or hw.get("path") or hw.get("origin"))
    interconnect: Mapping[str, Any] = {}
    if isinstance(probe, Mapping) and isinstance(probe.get("interconnect"), Mapping):
        interconnect = probe["interconnect"]
    hw_class = str(hw.get("interconnect_class") or interconnect.get("class") or "unknown")
    evidence = [str(e) for e in interconnect.get("evidence", []) or [] if str(e).strip()]
    for key in ("evidence",):
        if isinstance(hw.get(key), list):
            evidence += [str(e) for e in hw[key] if str(e).strip()]
    series: list[AllReduceSeries] = []
    if isinstance(probe, Mapping):
        series = _allreduce_series(probe.get("allreduce", []))
    description = str(hw.get("description", "") or "")
    profile_sources: list[str] = []
    name = str(hw.get("name", "") or "")
    profile = _load_profile(name) if name else None
    if profile is not None:
        description = description or str(getattr(profile, "description", ""))
        profile_sources = [str(s) for s in getattr(profile, "sources", ())]
        if not series:
            series = _profile_series(profile)
    details = [
        hardware_label(str(k), _plain(v))
        for k, v in hw.items()
        if k
        not in ("probe", "evidence", "name", "interconnect_class", "tp", "source", "description")
    ]
    return HardwareView(
        name=name or "unknown",
        interconnect_class=hw_class,
        tp=int_or_none(hw.get("tp")),
        source=str(hw.get("source", "") or ""),
        description=description,
        evidence=evidence,
        details=details,
        allreduce=series,
        profile_sources=profile_sources,
    )


#: What the page calls each manifest hardware key (a reader sees labels, not JSON keys).
HARDWARE_LABELS: dict[str, tuple[str, str]] = {
    "gpu": ("GPU", ""),
    "allreduce_alpha_us": ("All-reduce latency (fit)", " us"),
    "allreduce_bandwidth_gbps": ("All-reduce bandwidth (fit)", " GB/s"),
    "origin": ("Profile origin", ""),
    "spec": ("--hardware given", ""),
    "probe_path": ("Probe file", ""),
    "path": ("Profile file", ""),
    "gpus": ("GPUs", ""),
}


def hardware_label(key: str, value: str) -> tuple[str, str]:
    """(label, value with its unit) of a hardware detail; an unknown key is written as
    words (``some_key_ms`` -> ``Some key ms``), never as the raw key."""
    label, unit = HARDWARE_LABELS.get(key, ("", ""))
    if not label:
        words = key.replace("_", " ").strip()
        label = words[:1].upper() + words[1:]
    shown = value if value in ("", "None") or not unit else f"{value}{unit}"
    return label, shown


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)[:500]
    return str(value)


def _read_probe_file(path: Any) -> Mapping[str, Any] | None:
    if not isinstance(path, str) or not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None


def _load_profile(name: str, tp: int | None = None) -> HardwareProfile | None:
    try:
        return load_hardware(name, tp=tp)
    except SpecbenchError:
        return None


def _allreduce_series(rows: Any) -> list[AllReduceSeries]:
    if not isinstance(rows, list):
        return []
    groups: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        nbytes = int_or_none(row.get("bytes"))
        latency = finite(row.get("latency_us"))
        if nbytes is None or latency is None or nbytes <= 0 or latency <= 0:
            continue
        label = f"{row.get('backend', '?')} {row.get('mode', '')} x{row.get('world_size', '?')}"
        groups.setdefault(" ".join(label.split()), []).append((nbytes, latency))
    out = []
    for label, points in sorted(groups.items()):
        points.sort()
        out.append(
            AllReduceSeries(label, [p[0] for p in points], [p[1] for p in points], measured=True)
        )
    return out


def _profile_series(profile: Any) -> list[AllReduceSeries]:
    out: list[AllReduceSeries] = []
    sizes = [2**k for k in range(10, 29, 2)]
    for fit in getattr(profile, "allreduce", ()):
        try:
            latencies = [float(fit.predict_us(n)) for n in sizes]
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            continue
        label = f"{fit.backend} x{fit.world_size} (profile fit)"
        out.append(AllReduceSeries(label, sizes, latencies, measured=False))
    return out


def report_data(run_dir: Path | str) -> ReportData:
    """Load and compute in one call (what the renderers use)."""
    return build_report_data(read_run(run_dir))


__all__ = [
    "RunData",
    "build_hardware",
    "build_overview",
    "build_report_data",
    "build_verdict_view",
    "read_run",
    "report_data",
]
