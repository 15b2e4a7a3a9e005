"""Published EAGLE-3 measurements as data, and the model's prediction for each.

The rows live in data/published.toml with their sources; the regression tests hold the
model to them and benchmarks/bench_published.py prints the table. Keeping the comparison
here (not in the test) lets the README table, the benchmark and the tests agree.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specbench.errors import FileFormatError
from specbench.model._data import data_dir, get_int, get_num, get_str, read_toml
from specbench.model.draft_profile import load_draft_profile
from specbench.model.engines import EngineProfile, load_engine
from specbench.model.hardware import load_hardware
from specbench.model.performance import PerformanceModel
from specbench.model.targets import load_target
from specbench.model.workload import Workload
from specbench.spec_config import SpecConfig, valid_configs

#: tokens_per_s: the speculative server's tokens/s; tau_temperature_ratio: tau at the
#: row's temperature over tau at T = 0 (the same tree, draft and domain).
METRICS = ("speedup", "tau", "baseline_tokens_per_s", "tokens_per_s", "tau_temperature_ratio")


@dataclass(frozen=True)
class PublishedRow:
    id: str
    source: str
    target: str
    draft: str | None
    hardware: str
    tp: int
    engine: str
    config: SpecConfig | None  # None: the model's best configuration ("best")
    same_as: str | None  # "same-as:<row id>": the configuration predicted for that row
    batch: int
    requests: int | None  # a closed-loop run over this many prompts (None: steady batch)
    metric: str
    value: float
    domain: str
    workload: Workload


@dataclass(frozen=True)
class RowResult:
    row: PublishedRow
    predicted: float
    config: SpecConfig | None  # the configuration predicted (the best one for "best" rows)

    @property
    def ratio(self) -> float:
        return self.predicted / self.row.value


def load_published() -> list[PublishedRow]:
    path = data_dir("") / "published.toml"
    data = read_toml(path)
    defaults = data.get("defaults", {})
    rows = data.get("row")
    if not isinstance(rows, list) or not isinstance(defaults, Mapping):
        raise FileFormatError(path, "expected [defaults] and [[row]] tables", field="row")
    return [_row(path, i, {**defaults, **r}) for i, r in enumerate(rows)]


def _row(path: object, i: int, r: Mapping[str, Any]) -> PublishedRow:
    where = f"row[{i}]."
    metric = get_str(path, r, "metric", where)
    if metric not in METRICS:
        raise FileFormatError(path, f"unknown metric {metric!r}", field=f"{where}metric")
    raw = r.get("config")
    same_as = None
    if isinstance(raw, str) and raw.startswith("same-as:"):
        config, same_as = None, raw.removeprefix("same-as:")
    elif raw is None or raw == "best":
        config = None
    elif isinstance(raw, list) and len(raw) == 3:
        steps, topk, ndt = (int(v) for v in raw)
        config = SpecConfig(steps, topk, ndt)
    else:
        raise FileFormatError(path, 'expected [s, k, n] or "best"', field=f"{where}config")
    return PublishedRow(
        id=get_str(path, r, "id", where),
        source=get_str(path, r, "source", where),
        target=get_str(path, r, "target", where),
        draft=r.get("draft"),
        hardware=get_str(path, r, "hardware", where),
        tp=get_int(path, r, "tp", where),
        engine=get_str(path, r, "engine", where),
        config=config,
        same_as=same_as,
        batch=get_int(path, r, "batch", where),
        requests=get_int(path, r, "requests", where) if "requests" in r else None,
        metric=metric,
        value=get_num(path, r, "value", where),
        domain=get_str(path, r, "domain", where),
        workload=Workload(
            input_len=get_int(path, r, "input_len", where, minimum=0),
            output_len=get_int(path, r, "output_len", where, minimum=0),
            temperature=get_num(path, r, "temperature", where, positive=False),
        ),
    )


def _model(
    row: PublishedRow,
    samples: int,
    cache: dict[tuple[Any, ...], PerformanceModel],
    engines: Mapping[str, EngineProfile],
) -> PerformanceModel:
    key = (row.target, row.draft, row.hardware, row.tp, row.engine, row.workload)
    model = cache.get(key)
    if model is None:
        target = load_target(row.target)
        if row.draft:
            target = load_draft_profile(row.draft).apply(target)
        model = PerformanceModel(
            target,
            load_hardware(row.hardware, row.tp),
            samples=samples,
            engine=engines.get(row.engine) or load_engine(row.engine),
            workload=row.workload,
        )
        cache[key] = model
    return model


def evaluate(
    rows: Sequence[PublishedRow],
    *,
    samples: int = 2000,
    engines: Mapping[str, EngineProfile] | None = None,
) -> list[RowResult]:
    """The model's figure for every row (SIMULATED), with the configuration it used;
    `engines` replaces shipped engine profiles by name (to refit them)."""
    cache: dict[tuple[Any, ...], PerformanceModel] = {}
    out: list[RowResult] = []
    chosen: dict[str, SpecConfig] = {}
    for row in rows:
        model = _model(row, samples, cache, engines or {})
        if row.metric == "baseline_tokens_per_s":
            out.append(RowResult(row, model.predict(None, row.batch).baseline_tokens_per_s, None))
            continue
        if row.same_as is not None:
            if row.same_as not in chosen:
                raise FileFormatError(
                    "published.toml", f"row {row.same_as!r} must come first", field=row.id
                )
            cfg = chosen[row.same_as]
        else:
            cfg = row.config or _best_config(model, row)
        chosen[row.id] = cfg
        out.append(RowResult(row, _figure(row, cfg, model, samples, cache, engines or {}), cfg))
    return out


def _figure(
    row: PublishedRow,
    cfg: SpecConfig,
    model: PerformanceModel,
    samples: int,
    cache: dict[tuple[Any, ...], PerformanceModel],
    engines: Mapping[str, EngineProfile],
) -> float:
    """The model's figure of a speculative row's metric at configuration `cfg`."""
    if row.metric == "speedup" and row.requests is not None:
        return model.run_speedup(cfg, row.batch, row.requests, row.domain)
    if row.metric == "tau_temperature_ratio":
        greedy_row = dataclasses.replace(
            row, workload=dataclasses.replace(row.workload, temperature=0.0)
        )
        greedy = _model(greedy_row, samples, cache, engines)
        return model.expected_tau(cfg, row.domain) / greedy.expected_tau(cfg, row.domain)
    p = model.predict(cfg, row.batch, row.domain)
    return {"tau": p.tau, "tokens_per_s": p.tokens_per_s}.get(row.metric, p.speedup)


def _best_config(model: PerformanceModel, row: PublishedRow) -> SpecConfig:
    preds = model.predict_grid(valid_configs(), [row.batch], domain=row.domain)
    best = max(preds, key=lambda p: p.speedup).config
    assert best is not None  # predict_grid only returns speculative configurations
    return best


def median_abs_error(results: Sequence[RowResult]) -> float:
    """Median of |predicted / published - 1| over the rows."""
    return statistics.median(abs(r.ratio - 1.0) for r in results)
