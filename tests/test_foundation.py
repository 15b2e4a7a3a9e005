"""The shared contracts: configuration validity, versioned JSON, run directory, records."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from specbench.errors import FileFormatError, InvalidConfigError
from specbench.rundir.layout import (
    TRIAL_COLUMNS,
    Manifest,
    RunDirectory,
    WorkloadFingerprint,
    normalise_trials,
    trials_to_records,
)
from specbench.rundir.records import RequestRecord, read_records, write_records
from specbench.schema import SCHEMA_VERSION, read_json, write_json
from specbench.spec_config import (
    SpecConfig,
    config_key,
    invalid_reason,
    make_config,
    parse_config,
    parse_configs,
    valid_configs,
)


def test_sglang_validity_rules() -> None:
    assert invalid_reason(3, 4, 8) is None
    assert invalid_reason(3, 1, 4) is None
    # topk 1 forces a chain of num_steps + 1 tokens.
    assert "num_steps + 1" in (invalid_reason(3, 1, 8) or "")
    # More verified nodes than the candidate pool: SGLang's 'index out of range'.
    assert "out of range" in (invalid_reason(2, 2, 6) or "")
    assert invalid_reason(2, 2, 5) is None
    assert invalid_reason(1, 4, 1) is not None
    assert invalid_reason(0, 4, 2) is not None


def test_valid_space_matches_rules_and_is_sorted() -> None:
    space = valid_configs()
    assert space == sorted(space)
    assert len(space) == len(set(space))
    assert all(invalid_reason(c.num_steps, c.topk, c.num_draft_tokens) is None for c in space)
    # Brute-force count of the same rules, written independently.
    expected = 0
    for steps in range(1, 9):
        for topk in (1, 2, 4, 8):
            for ndt in range(2, 65):
                chain_ok = topk != 1 or ndt == steps + 1
                if chain_ok and ndt - 1 <= steps * topk:
                    expected += 1
    assert len(space) == expected
    assert SpecConfig(3, 4, 8) in space


def test_parse_config_forms_and_errors() -> None:
    assert parse_config("3,4,8") == SpecConfig(3, 4, 8)
    assert parse_config(" 5-4-8 ") == SpecConfig(5, 4, 8)
    assert parse_configs(["3,4,8;5,1,6", "2x2x5"]) == [
        SpecConfig(3, 4, 8),
        SpecConfig(5, 1, 6),
        SpecConfig(2, 2, 5),
    ]
    with pytest.raises(InvalidConfigError, match="expected num_steps,topk,num_draft_tokens"):
        parse_config("3,4")
    with pytest.raises(InvalidConfigError, match="topk 1"):
        make_config(3, 1, 8)
    assert config_key(None) == "baseline"
    assert config_key(SpecConfig(3, 4, 8)) == "3-4-8"


def test_versioned_json_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.json"
    write_json(path, {"value": 1.5, "bad": math.nan})
    data = read_json(path)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["bad"] is None  # NaN is not JSON
    path.write_text('{"schema_version": "9.0"}')
    with pytest.raises(FileFormatError, match="schema_version"):
        read_json(path)
    path.write_text('{"value": ')
    with pytest.raises(FileFormatError, match="malformed JSON"):
        read_json(path)
    with pytest.raises(FileFormatError, match="no such"):
        read_json(tmp_path / "missing.json")


def _fingerprint(**changes: object) -> WorkloadFingerprint:
    fields: dict[str, object] = {
        "target_model": "MiniMaxAI/MiniMax-M2.7",
        "draft_model": "Lorbus/MiniMax-M2.7-EAGLE3",
        "algorithm": "EAGLE3",
        "prompts_sha256": "abc",
        "num_prompts": 60,
        "max_new_tokens": 256,
    }
    fields.update(changes)
    return WorkloadFingerprint(**fields)  # type: ignore[arg-type]


def test_run_directory_round_trip(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run")
    manifest = Manifest(
        target="minimax-m2.7",
        hardware={"name": "h200-nvlink", "interconnect_class": "nvlink", "tp": 4},
        backend="sim",
        simulated=True,
        workload=_fingerprint(),
        concurrencies=[1, 8],
        strategy="optuna",
        specbench_version="0.1.0",
    )
    run.write_manifest(manifest)
    again = run.read_manifest()
    assert again.workload == manifest.workload
    assert again.primary_concurrency == 1
    rows = [
        {
            "trial_number": 0,
            "config_key": "3-4-8",
            "num_steps": 3,
            "topk": 4,
            "num_draft_tokens": 8,
            "concurrency": 1,
            "state": "complete",
            "tau": 2.6,
            "speedup": 2.0,
            "simulated": True,
        },
        {"trial_number": -1, "config_key": "baseline", "concurrency": 1, "state": "complete"},
    ]
    frame = run.write_trials(rows)
    assert list(frame.columns) == list(TRIAL_COLUMNS)
    run.write_results(
        {
            "target": "minimax-m2.7",
            "backend": "sim",
            "simulated": True,
            "concurrencies": [1],
            "best": None,
            "trials": trials_to_records(frame),
        }
    )
    trials = run.read_trials()
    assert trials.loc[0, "num_steps"] == 3
    assert trials["num_steps"].isna().iloc[1]
    assert trials.loc[0, "simulated"]


def test_results_field_errors_name_the_field(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path)
    run.write_results(
        {
            "target": "t",
            "backend": "sim",
            "simulated": True,
            "concurrencies": [1],
            "trials": [{"config_key": "3-4-8", "state": "complete"}],
        }
    )
    with pytest.raises(FileFormatError, match=r"trials\[0\].*'concurrency'"):
        run.read_results()
    data = json.loads(run.results_path.read_text())
    data["simulated"] = "yes"
    run.results_path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="'simulated'"):
        run.read_results()


def test_fingerprint_differences() -> None:
    assert _fingerprint().differences(_fingerprint()) == []
    diff = _fingerprint().differences(_fingerprint(max_new_tokens=128))
    assert diff == ["max_new_tokens: 256 != 128"]
    assert _fingerprint().digest != _fingerprint(prompts_sha256="def").digest


def test_records_round_trip_and_derived_metrics(tmp_path: Path) -> None:
    record = RequestRecord(
        prompt_id="p1",
        domain="code",
        prompt_tokens=10,
        completion_tokens=101,
        spec_verify_ct=40,
        ttft_ms=50.0,
        e2e_ms=1050.0,
        itl_ms=[10.0, 0.0],
    )
    assert record.tau == pytest.approx(101 / 40)
    assert record.output_tokens_per_s == pytest.approx(100.0)
    baseline = RequestRecord("p2", "chat", 10, 5, None, 1.0, 2.0)
    failed = RequestRecord("p3", "math", 10, 0, None, None, None, error="timeout")
    assert baseline.tau is None and failed.tau is None and failed.output_tokens_per_s is None
    path = tmp_path / "requests.jsonl"
    write_records(path, [record])
    write_records(path, [baseline, failed])
    assert read_records(path) == [record, baseline, failed]
    path.write_text(path.read_text() + '{"prompt_id": "torn"\n')
    with pytest.raises(FileFormatError, match="line 5 is not JSON"):
        read_records(path)


def test_normalise_trials_keeps_integer_columns() -> None:
    frame = normalise_trials([{"num_steps": 3, "concurrency": 8}, {"concurrency": 1}])
    assert str(frame["num_steps"].dtype) == "Int64"
    assert str(frame["concurrency"].dtype) == "Int64"


def test_cli_unknown_command_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "specbench", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specbench: error:")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spec_verify_ct", "40"),
        ("e2e_ms", [1]),
        ("concurrency", None),
        ("itl_ms", ["x"]),
        ("completion_tokens", True),
        ("config_key", 3),
    ],
)
def test_hand_edited_record_names_the_field(field: str, value: object) -> None:
    good = RequestRecord("p1", "code", 10, 20, 8, 5.0, 100.0).to_dict()
    assert RequestRecord.from_dict(good) == RequestRecord("p1", "code", 10, 20, 8, 5.0, 100.0)
    with pytest.raises(FileFormatError, match=f"'{field}'"):
        RequestRecord.from_dict({**good, field: value}, path="requests.jsonl:3")


def test_written_files_are_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    write_json(path, {"x": 1})
    assert path.stat().st_mode & 0o044 == 0o044  # umask 022 in tests: group/other read


def test_concurrency_values_parse_the_same_for_every_command() -> None:
    from specbench.cli.values import parse_concurrency_list
    from specbench.errors import BadInputError

    assert parse_concurrency_list(" 8, 1,32,") == [8, 1, 32]
    for bad in ("1,x", "0", "-4", "1.5", ",", ""):
        with pytest.raises(BadInputError, match="--concurrency"):
            parse_concurrency_list(bad)
    for command in (
        ["predict", "--target", "minimax-m2.7"],
        ["sweep"],
        ["gate", "--baseline", "a", "--candidate", "b"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "specbench", *command, "--concurrency", "1,x"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.strip() == (
            "specbench: error: --concurrency: 'x' is not a positive integer (e.g. 1,8,32)"
        )
