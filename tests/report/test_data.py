"""The plain-data layer of the report: every number shown is checked here, not in HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from specbench.errors import BadInputError, FileFormatError
from specbench.report.charts import (
    build_failed,
    build_heatmap,
    build_history,
    build_prediction_check,
    build_tau_distribution,
    build_tau_vs_draft_tokens,
    build_trial_table,
)
from specbench.report.data import read_run, report_data
from specbench.rundir.layout import normalise_trials
from specbench.rundir.records import RequestRecord
from specbench.spec_config import SpecConfig
from specbench.verdict.candidates import config_table
from tests.support.run_dirs import write_run
from tests.support.trials import trial_row


def trial(
    number: int,
    key: str,
    concurrency: int,
    speedup: float | None,
    tau: float | None = 2.5,
    *,
    predicted: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    fields.setdefault("source", "tpe")
    return trial_row(
        key, concurrency, speedup, tau, number=number, predicted_speedup=predicted, **fields
    )


def test_heatmap_keeps_best_draft_tokens_per_cell_at_primary_concurrency() -> None:
    trials = normalise_trials(
        [
            trial(0, "3-4-8", 1, 1.9),
            trial(1, "3-4-12", 1, 2.1),
            trial(2, "3-4-6", 1, 1.2),
            trial(3, "5-1-6", 1, 1.5),
            trial(4, "3-4-8", 8, 3.0),  # other concurrency: ignored
        ]
    )
    heat = build_heatmap(config_table(trials), 1)
    assert heat is not None
    assert heat.steps == [3, 5] and heat.topks == [1, 4]
    assert heat.speedup == [[None, pytest.approx(2.1)], [pytest.approx(1.5), None]]
    assert heat.draft_tokens == [[None, 12], [6, None]]
    assert build_heatmap(config_table(trials), 32) is None


def test_tau_vs_draft_tokens_is_best_over_depth_averaged_over_load() -> None:
    trials = normalise_trials(
        [
            trial(0, "3-4-8", 1, 1.9, tau=2.4),
            trial(0, "3-4-8", 8, 1.2, tau=2.6),  # mean 2.5
            trial(1, "5-4-8", 1, 1.9, tau=2.9),
            trial(2, "3-1-4", 1, 1.5, tau=2.0),
        ]
    )
    series = {s.label: s for s in build_tau_vs_draft_tokens(config_table(trials))}
    assert series["topk 4"].x == [8.0] and series["topk 4"].y == [pytest.approx(2.9)]
    assert series["topk 1"].y == [pytest.approx(2.0)]


def test_history_best_so_far_is_monotone_and_skips_failed() -> None:
    trials = normalise_trials(
        [
            trial(0, "3-4-8", 1, 1.5),
            trial(1, "3-4-12", 1, None, state="failed"),
            trial(2, "5-4-8", 1, 1.9),
            trial(3, "2-4-8", 1, 1.1),
            trial(3, "2-4-8", 8, 9.9),  # not at the primary concurrency
        ]
    )
    history = build_history(trials, 1)
    assert history is not None
    assert history.trial_numbers == [0, 2, 3]
    assert history.best_so_far == [1.5, 1.9, 1.9]
    assert build_history(trials, 64) is None


def test_prediction_check_only_where_the_model_was_used() -> None:
    trials = normalise_trials(
        [
            trial(0, "3-4-8", 1, 2.0, predicted=2.2),
            trial(1, "5-4-8", 1, 1.0, predicted=0.9),
            trial(2, "3-1-4", 1, 1.5),
            {**trial(-1, "1-1-2", 1, 1.0, predicted=1.0), "config_key": "baseline"},
        ]
    )
    check = build_prediction_check(trials)
    assert check is not None
    assert len(check.points) == 2
    assert check.mean_abs_pct_error == pytest.approx(10.0)
    assert check.within_10pct == 2
    assert build_prediction_check(normalise_trials([trial(0, "3-4-8", 1, 2.0)])) is None


def test_failed_trials_grouped_once_per_trial_with_reason() -> None:
    rows = [
        trial(4, "8-8-64", c, None, state="failed", error="OOM", log_tail="line1\nline2")
        for c in (1, 8, 32)
    ]
    rows.append(trial(5, "2-2-5", 1, None, state="failed"))
    failed = build_failed(normalise_trials(rows))
    assert [(f.trial_number, f.concurrencies) for f in failed] == [(4, [1, 8, 32]), (5, [1])]
    assert failed[0].error == "OOM" and failed[0].log_tail == "line1\nline2"
    assert failed[1].error == "no reason recorded"


def _record(key: str, domain: str, completion: int, verify: int | None) -> RequestRecord:
    return RequestRecord("p", domain, 10, completion, verify, 1.0, 2.0, config_key=key)


def test_tau_distribution_prefers_the_recommended_configuration() -> None:
    records = [
        _record("3-4-8", "chat", 100, 50),
        _record("3-4-8", "code", 100, 25),
        _record("5-4-8", "chat", 100, 20),
        _record("baseline", "chat", 100, None),
        RequestRecord("p", "math", 10, 100, 10, 1.0, 2.0, error="boom", config_key="3-4-8"),
    ]
    dist = build_tau_distribution(records, "3-4-8")
    assert dist is not None
    assert dist.source == "configuration 3-4-8"
    assert dist.samples == {"chat": [2.0], "code": [4.0]}
    assert dist.stats["code"]["n"] == 1
    fallback = build_tau_distribution(records, "9-9-9")
    assert fallback is not None and fallback.source == "all speculative trials"
    assert sorted(fallback.samples["chat"]) == [2.0, 5.0]
    assert build_tau_distribution([_record("baseline", "chat", 1, None)], None) is None


def test_trial_table_sort_keys_are_numeric_and_empty_for_missing() -> None:
    table = build_trial_table(
        normalise_trials([trial(1, "3-4-8", 8, 1.25), trial(0, "3-4-8", 1, None)])
    )
    headers = [h for h, _ in table.headers]
    col = headers.index("Speedup")
    trial_col = headers.index("Trial")
    assert [r[trial_col].text for r in table.rows] == ["0", "1"]  # ordered by trial number
    assert table.rows[0][col].text == "" and table.rows[0][col].sort == ""
    assert table.rows[1][col].text == "1.25x" and float(table.rows[1][col].sort) == 1.25


def test_report_data_of_a_fixture_run(tmp_path: Path) -> None:
    data = report_data(write_run(tmp_path / "run", scenario="crosses", failed=2))
    assert data.simulated
    assert data.overview.num_trials == 12 and data.overview.num_failed == 2
    assert data.overview.num_completed == 10
    assert data.verdict.status == "crosses" and data.verdict.recommended
    assert data.verdict.break_even is not None and 8 < data.verdict.break_even < 32
    assert [p.concurrency for p in data.verdict.points] == [1, 8, 32]
    assert [p.pays for p in data.verdict.points] == [True, True, False]
    assert data.verdict.launch_command is not None
    assert "--model-path MiniMaxAI/MiniMax-M2.7" in data.verdict.launch_command
    assert "--tp-size 4" in data.verdict.launch_command  # the manifest's TP, not the preset's
    assert len(data.failed) == 2
    # The top table ranks at the primary load with the mixed-load pick first: one best.
    assert len(data.top) == 5
    assert data.top[0].config_key == data.verdict.decision.ranking()[0].key
    decision = data.verdict_section.decision
    assert decision.config is not None
    assert data.verdict.config_key == decision.config.key == data.top[0].config_key
    assert data.hardware.interconnect_class == "nvlink"
    assert data.hardware.allreduce and data.hardware.allreduce[0].measured
    assert data.heatmap is not None and data.history is not None
    # In a SIMULATED run the "measurement" is the model itself: no model check.
    assert data.prediction is None
    assert data.tau_distribution is not None
    assert set(data.tau_distribution.domains) == {"chat", "code", "math"}
    assert len(data.table.rows) == 3 + 12 * 3


def test_missing_probe_and_unknown_target_degrade_gracefully(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", with_probe=False, target="no-such-model", failed=0)
    data = report_data(run)
    assert data.hardware.evidence == []
    # h200-nvlink is a shipped profile: its fitted curve stands in, labelled as not tested.
    assert all(not s.measured for s in data.hardware.allreduce)
    assert any("no-such-model" in note for note in data.notes)
    assert data.verdict.launch_command is not None
    assert "MiniMaxAI/MiniMax-M2.7" in data.verdict.launch_command  # from the manifest


def test_torn_requests_file_is_a_note_not_a_failure(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", failed=0)
    path = run / "requests.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"prompt_id": "torn", "dom')
    loaded = read_run(run)
    assert loaded.requests  # everything before the torn line
    assert any("bad line" in note for note in loaded.notes)
    (run / "requests.jsonl").unlink()
    assert any("missing" in n for n in read_run(run).notes)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such run directory"):
        read_run(tmp_path / "nope")
    with pytest.raises(BadInputError, match=r"no manifest\.json"):
        read_run(tmp_path)
    run = write_run(tmp_path / "run")
    (run / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"results\.json"):
        read_run(run)


def test_no_baseline_run_has_unknown_speedups(tmp_path: Path) -> None:
    data = report_data(write_run(tmp_path / "run", with_baseline=False, predicted=False))
    assert data.verdict.status == "unknown"
    assert not data.verdict.recommended
    assert data.heatmap is None and data.history is None and data.prediction is None
    assert data.tau_vs_draft_tokens  # tau needs no baseline


def test_fixture_configs_are_valid() -> None:
    from tests.support.run_dirs import default_configs

    configs = default_configs(200)
    assert len(set(configs)) == 200
    assert SpecConfig(3, 4, 8) in configs
    assert isinstance(pd.DataFrame([c.as_dict() for c in configs]), pd.DataFrame)


def test_requests_reader_skips_latency_lists_but_keeps_every_field(tmp_path: Path) -> None:
    from specbench.rundir.records import read_records, write_records

    run = write_run(tmp_path / "run", failed=0, itl_points=50)
    tricky = RequestRecord(
        prompt_id='x", "itl_ms": [1, 2], "domain": "evil',
        domain="code",
        prompt_tokens=5,
        completion_tokens=90,
        spec_verify_ct=30,
        ttft_ms=1.0,
        e2e_ms=2.0,
        itl_ms=[1.5] * 10,
        config_key="3-4-8",
        concurrency=1,
    )
    write_records(run / "requests.jsonl", [tricky])
    full = read_records(run / "requests.jsonl")
    lean = read_run(run).requests
    assert len(lean) == len(full)
    assert all(r.itl_ms == [] for r in lean)
    assert [(r.prompt_id, r.domain, r.config_key, r.tau) for r in lean] == [
        (r.prompt_id, r.domain, r.config_key, r.tau) for r in full
    ]
    assert lean[-1].prompt_id == tricky.prompt_id and lean[-1].tau == 3.0


def test_probe_read_from_the_file_the_manifest_names(tmp_path: Path) -> None:
    import json

    probe = {
        "kind": "specbench.probe",
        "interconnect": {"class": "host-staged", "evidence": ["GPU0-GPU1: SYS, no P2P."]},
        "allreduce": [
            {"backend": "nccl", "mode": "host-staged", "world_size": 2, "bytes": b, "latency_us": t}
            for b, t in ((1024, 30.0), (1 << 20, 120.0))
        ],
    }
    probe_path = tmp_path / "probe.json"
    probe_path.write_text(json.dumps(probe), encoding="utf-8")
    run = write_run(tmp_path / "run", with_probe=False, hardware_class="host-staged")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["hardware"] = {
        "name": "my-box",
        "interconnect_class": "host-staged",
        "tp": 2,
        "origin": str(probe_path),
        "source": "probe",
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    hw = report_data(run).hardware
    assert hw.interconnect_class == "host-staged"
    assert hw.evidence == ["GPU0-GPU1: SYS, no P2P."]
    assert [s.label for s in hw.allreduce] == ["nccl host-staged x2"]
    assert hw.allreduce[0].bytes == [1024, 1 << 20] and hw.allreduce[0].measured
    assert ("Profile origin", str(probe_path)) in hw.details  # a label, not the raw key


def test_break_even_is_measured_and_the_model_curve_is_labelled(tmp_path: Path) -> None:
    """Pays everywhere measured: the measured break-even stays unknown (not
    extrapolated); the model's curve is drawn and named a prediction, and the sentence
    says which concurrency to measure next. A crossing run gives the measured point."""
    from specbench.model import PerformanceModel, break_even_concurrency, load_hardware, load_target

    data = report_data(write_run(tmp_path / "run", scenario="pays-everywhere"))
    section = data.verdict_section
    assert section.screen.kind == "speculate" and section.screen.break_even is None
    assert "not extrapolated" in section.break_even_sentence
    pick = section.decision.config
    assert pick is not None
    model = PerformanceModel(load_target("minimax-m2.7"), load_hardware("h200-nvlink", tp=4))
    expected = break_even_concurrency(model.predict_grid([pick], [64, 128, 256]))
    label = section.break_even.model_label
    assert label is not None and "SIMULATED, not a measurement" in label
    if expected is not None:
        assert f"--concurrency {round(expected)}" in section.break_even_sentence

    crossed = report_data(write_run(tmp_path / "crossed", scenario="crosses")).verdict_section
    assert crossed.screen.kind == "speculate-below" and crossed.screen.break_even is not None
    assert crossed.break_even.break_even == crossed.screen.break_even
    unknown = report_data(
        write_run(tmp_path / "custom", scenario="pays-everywhere", target="nope")
    ).verdict_section
    assert unknown.break_even.model_label is None and unknown.why.memory is None
