"""The run directory: the one contract between the sweep, the report and the gate.

A sweep writes here; ``specbench report`` and ``specbench gate`` only read. Keeping the
layout and the field names in one module means a field renamed here is renamed for all
three, and a hand-edited or truncated file fails with the file and field named.

Layout::

    <run>/manifest.json    what was run: target, hardware, backend, workload fingerprint
    <run>/results.json     best configuration, break-even, baseline, every trial row
    <run>/trials.csv       the same trial rows, one per (trial, concurrency), for pandas
    <run>/requests.jsonl   every measured request (header line carries schema_version)
    <run>/study.journal    Optuna journal storage (embedded default)
    <run>/logs/            server logs, one per configuration
    <run>/server_info/     each server's version and speculative/serving arguments
    <run>/report.html      rendered by `specbench report`
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from specbench.errors import FileFormatError
from specbench.rundir.plausible import check_values
from specbench.rundir.records import RequestRecord, iter_records
from specbench.rundir.writer_lock import WriterLock, acquire
from specbench.schema import SCHEMA_VERSION, read_json, require, write_json, write_text_atomic

MANIFEST_KIND = "specbench.manifest"
RESULTS_KIND = "specbench.results"
SERVER_INFO_KIND = "specbench.server_info"

#: Trial states as stored (Optuna's names, lower case).
STATE_COMPLETE = "complete"
STATE_FAILED = "failed"
STATE_RUNNING = "running"
#: Loads of a configuration not measured because its first load was clearly worse than
#: the best (Optuna pruning semantics; the reason is in ``prune_reason``).
STATE_PRUNED = "pruned"

#: Columns of trials.csv and of results.json "trials", in order. One row per
#: (trial, concurrency); baseline rows have config_key "baseline", trial_number -1 and
#: empty num_steps/topk/num_draft_tokens. Units are in the names.
TRIAL_COLUMNS: tuple[str, ...] = (
    "schema_version",
    "trial_number",  # Optuna trial number; -1 for the baseline
    "config_key",  # "3-4-8" or "baseline"
    "method",  # the speculative method (eagle3, draft_model, ngram...); empty for the baseline
    "method_params",  # the method's own parameters, "name=value,..."; empty for EAGLE3
    "num_steps",
    "topk",
    "num_draft_tokens",
    "concurrency",
    "state",  # complete | failed | running | pruned
    "source",  # model-prior | card | sglang-auto | tpe | gp | grid | fixed | baseline | endpoint
    "tau",  # sum(completion_tokens) / sum(spec_verify_ct); NaN for baseline
    "tau_p10",  # percentiles of the per-request tau distribution
    "tau_p50",
    "tau_p90",
    "tau_source",  # per_request | server_average | unavailable; empty for the baseline
    "tau_server",  # the server's own avg_spec_accept_length after the load, when reported
    "output_tokens_per_s",  # aggregate over all streams (wall-clock window)
    "per_stream_tokens_per_s",  # mean decode speed of one stream
    "speedup",  # output_tokens_per_s / baseline's at the same concurrency and prompts
    "speedup_ci_low",  # 95% bootstrap interval of the speedup (paired by prompt); NaN if unknown
    "speedup_ci_high",
    "ttft_ms_p50",
    "ttft_ms_p90",
    "ttft_ms_p99",
    "itl_ms_p50",
    "itl_ms_p90",
    "itl_ms_p99",
    "e2e_ms_p50",
    "num_requests",
    "num_errors",
    "completion_tokens",
    "spec_verify_ct",
    "noisy",  # True when the spread of per-request speed is wide (pyperf-style warning)
    "noise_reason",  # why it is flagged noisy, in words; empty otherwise
    "remeasured",  # times this load was measured again because it was flagged noisy
    "prune_reason",  # why the higher loads were not measured (state pruned), empty otherwise
    "predicted_tau",  # the performance model's prediction, when the model was used
    "predicted_speedup",
    "simulated",
    "worker",  # host:pid of the sweep worker that measured it
    "duration_s",
    "error",  # why a failed trial failed (one line), empty otherwise
    "log_tail",  # last lines of the server log for failed trials
)

_INT_COLUMNS = (
    "trial_number",
    "num_steps",
    "topk",
    "num_draft_tokens",
    "concurrency",
    "remeasured",
)
_BOOL_COLUMNS = ("noisy", "simulated")
_TEXT_COLUMNS = (
    "schema_version",
    "config_key",
    "method",
    "method_params",
    "state",
    "source",
    "worker",
    "error",
    "log_tail",
    "noise_reason",
    "tau_source",
    "prune_reason",
)
_FLOAT_COLUMNS = tuple(
    c for c in TRIAL_COLUMNS if c not in _INT_COLUMNS + _BOOL_COLUMNS + _TEXT_COLUMNS
)


@dataclass(frozen=True)
class WorkloadFingerprint:
    """What makes two runs comparable: same prompts, token budget, target and draft.

    Hardware and SGLang version are deliberately *not* part of it: comparing across
    those is exactly what the gate is for.
    """

    target_model: str
    draft_model: str
    algorithm: str
    prompts_sha256: str
    num_prompts: int
    max_new_tokens: int
    dataset: str = "builtin"
    temperature: float = 0.0

    @property
    def digest(self) -> str:
        """Short stable hash of every field, for display and quick equality."""
        payload = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    def differences(self, other: WorkloadFingerprint) -> list[str]:
        """Human-readable field differences, empty when comparable."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]!r} != {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "digest": self.digest}

    @classmethod
    def from_json(cls, path: object, data: Mapping[str, Any]) -> WorkloadFingerprint:
        def field_of(name: str, typ: type | tuple[type, ...]) -> Any:
            return require(path, data, name, typ)

        return cls(
            target_model=field_of("target_model", str),
            draft_model=field_of("draft_model", str),
            algorithm=field_of("algorithm", str),
            prompts_sha256=field_of("prompts_sha256", str),
            num_prompts=field_of("num_prompts", int),
            max_new_tokens=field_of("max_new_tokens", int),
            dataset=str(data.get("dataset", "builtin")),
            temperature=float(data.get("temperature", 0.0)),
        )


@dataclass
class Manifest:
    """What was run, written before the first trial so a crashed sweep is still described."""

    target: str
    hardware: dict[
        str, Any
    ]  # name, interconnect_class, tp, source ("profile" | "probe" | "endpoint")
    backend: str  # an engine's registry name (specbench.harness.engines): sim, sglang, vllm, ...
    simulated: bool
    workload: WorkloadFingerprint
    concurrencies: list[int]
    strategy: str
    specbench_version: str
    command: list[str] = field(default_factory=list)
    created_at: str = ""
    study_name: str = ""
    storage: str = ""  # URL with any password removed
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_concurrency(self) -> int:
        return self.concurrencies[0]

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["workload"] = self.workload.to_json()
        return {"kind": MANIFEST_KIND, **body, "primary_concurrency": self.primary_concurrency}

    @classmethod
    def from_json(cls, path: object, data: Mapping[str, Any]) -> Manifest:
        if data.get("kind") != MANIFEST_KIND:
            raise FileFormatError(path, f"expected {MANIFEST_KIND!r}", field="kind")
        concurrencies = require(path, data, "concurrencies", list)
        if not concurrencies or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in concurrencies
        ):
            raise FileFormatError(
                path, "expected a non-empty list of positive integers", field="concurrencies"
            )
        workload = require(path, data, "workload", dict)
        return cls(
            target=require(path, data, "target", str),
            hardware=require(path, data, "hardware", dict),
            backend=require(path, data, "backend", str),
            simulated=require(path, data, "simulated", bool),
            workload=WorkloadFingerprint.from_json(f"{path}: workload", workload),
            concurrencies=list(concurrencies),
            strategy=require(path, data, "strategy", str),
            specbench_version=require(path, data, "specbench_version", str),
            command=list(data.get("command", [])),
            created_at=str(data.get("created_at", "")),
            study_name=str(data.get("study_name", "")),
            storage=str(data.get("storage", "")),
            seed=int(data.get("seed", 0)),
            extra=dict(data.get("extra", {})),
        )


def normalise_trials(rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame with exactly TRIAL_COLUMNS, in order, with stable dtypes.

    Integer columns are nullable (baseline rows have no num_steps), so pandas keeps them
    as integers instead of silently turning them into floats.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for column in TRIAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame = pd.DataFrame(frame[list(TRIAL_COLUMNS)])
    frame["schema_version"] = SCHEMA_VERSION
    for column in _INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in _BOOL_COLUMNS:
        frame[column] = frame[column].map(_as_bool).astype("boolean")
    for column in _TEXT_COLUMNS[1:]:
        frame[column] = frame[column].fillna("").astype(str)
    for column in _FLOAT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    out: pd.DataFrame = frame.reset_index(drop=True)
    return out


def _as_bool(value: Any) -> bool | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def trials_to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON-ready dicts (NaN and pandas NA become None)."""
    frame = normalise_trials(frame)
    out: list[dict[str, Any]] = []
    for row in frame.astype(object).to_dict(orient="records"):
        out.append({str(k): (None if _is_missing(v) else v) for k, v in row.items()})
    return out


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


class RunDirectory:
    """Paths and typed readers/writers of one run directory."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        #: Held by the sweep writing here (writer_lock); None for readers.
        self.writer_lock: WriterLock | None = None

    def lock_for_writing(self, owner: str, *, shared: bool = False) -> None:
        """Take the one-writer lock (shared: workers of one --storage study), or raise
        RunDirectoryInUseError naming the sweep that holds it. The directory must exist."""
        if self.writer_lock is None or not self.writer_lock.held:
            self.writer_lock = acquire(self.path, owner, shared=shared)

    def release_writing_lock(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.release()

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def results_path(self) -> Path:
        return self.path / "results.json"

    @property
    def trials_path(self) -> Path:
        return self.path / "trials.csv"

    @property
    def requests_path(self) -> Path:
        return self.path / "requests.jsonl"

    @property
    def journal_path(self) -> Path:
        return self.path / "study.journal"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    @property
    def server_info_dir(self) -> Path:
        return self.path / "server_info"

    def server_info_path(self, name: str) -> Path:
        """server_info/<name>.json: one server's version and resolved arguments."""
        return self.server_info_dir / f"{name}.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    # -- writers (the sweep) -------------------------------------------------
    def write_manifest(self, manifest: Manifest) -> None:
        write_json(self.manifest_path, manifest.to_json())

    def write_trials(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
        frame = normalise_trials(rows)
        write_text_atomic(self.trials_path, frame.to_csv(index=False))
        return frame

    def write_server_info(self, name: str, info: Mapping[str, Any]) -> None:
        """What one server said about itself (kept small by the caller)."""
        self.server_info_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.server_info_path(name), {"kind": SERVER_INFO_KIND, **info})

    def write_results(self, results: Mapping[str, Any]) -> None:
        """results.json: best, break_even, baseline and every trial row (see read_results)."""
        write_json(self.results_path, {"kind": RESULTS_KIND, **results})

    # -- readers (report, gate) ----------------------------------------------
    def read_manifest(self) -> Manifest:
        data = read_json(self.manifest_path, kind="run manifest")
        return Manifest.from_json(self.manifest_path, data)

    def read_results(self) -> dict[str, Any]:
        """results.json with its required fields checked; trials as a list of dicts.

        Required: kind, target, backend, simulated, concurrencies, trials (list of
        objects each with config_key, concurrency, state). ``best`` may be null (no
        configuration completed); ``break_even`` and ``baseline`` are objects/lists.
        Every number must be finite and possible (plausible.check_values): NaN, a tau
        below 1 or a negative speed is refused, naming the field.
        """
        path = self.results_path
        data = read_json(path, kind="results file")
        if data.get("kind") != RESULTS_KIND:
            raise FileFormatError(path, f"expected {RESULTS_KIND!r}", field="kind")
        require(path, data, "target", str)
        require(path, data, "backend", str)
        require(path, data, "simulated", bool)
        require(path, data, "concurrencies", list)
        trials = require(path, data, "trials", list)
        for index, row in enumerate(trials):
            where = f"trials[{index}]"
            if not isinstance(row, dict):
                raise FileFormatError(path, "expected an object", field=where)
            path_row = f"{path}: {where}"
            for name, typ in (("config_key", str), ("concurrency", int), ("state", str)):
                require(path_row, row, name, typ)
        best = data.get("best")
        if best is not None and not isinstance(best, dict):
            raise FileFormatError(path, "expected an object or null", field="best")
        check_values(path, data)
        return data

    def read_trials(self) -> pd.DataFrame:
        """Trial rows as a DataFrame, from results.json (the authoritative copy)."""
        trials: list[dict[str, Any]] = self.read_results()["trials"]
        return normalise_trials(trials)

    def iter_requests(self) -> Iterator[RequestRecord]:
        return iter_records(self.requests_path)


__all__ = [
    "MANIFEST_KIND",
    "RESULTS_KIND",
    "SERVER_INFO_KIND",
    "STATE_COMPLETE",
    "STATE_FAILED",
    "STATE_PRUNED",
    "STATE_RUNNING",
    "TRIAL_COLUMNS",
    "Manifest",
    "RunDirectory",
    "WorkloadFingerprint",
    "normalise_trials",
    "trials_to_records",
]
