"""A full disk: named as such (one line, exit 1), every file left whole, and the same
command resumes once space is freed, without hand edits."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import specbench.schema as schema
from specbench.rundir.layout import RunDirectory
from specbench.rundir.records import RequestRecord, read_records, write_records
from specbench.sweeps.storage import check_journal, open_storage
from tests.support.sweeps import run_cli

SWEEP = ["sweep", "--target", "minimax-m2.7", "--backend", "sim", "--num-prompts", "8",
         "--max-new-tokens", "64", "--no-report"]  # fmt: skip


def _record(prompt_id: str) -> RequestRecord:
    return RequestRecord(prompt_id, "chat", 10, 20, 8, 5.0, 100.0, itl_ms=[1.0] * 19)


def _refuse_writes_after(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    """os.write as on a disk with ``budget`` bytes left: a short write, then ENOSPC."""
    real_write = os.write
    left = [budget]

    def write(fd: int, data: bytes | memoryview) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data[: left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(schema.os, "write", write)


def test_a_refused_append_leaves_the_records_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "requests.jsonl"
    write_records(path, [_record("a"), _record("b")], compact=True)
    before = path.read_bytes()
    _refuse_writes_after(monkeypatch, 100)  # half a record gets through, then ENOSPC
    with pytest.raises(OSError) as info:
        write_records(path, [_record("c"), _record("d")], compact=True)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before
    monkeypatch.undo()
    write_records(path, [_record("e")], compact=True)
    assert [r.prompt_id for r in read_records(path)] == ["a", "b", "e"]


def test_a_torn_last_line_is_dropped_before_the_next_append(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    write_records(path, [_record("a")])
    with path.open("a") as fh:
        fh.write('{"prompt_id": "torn", "dom')  # a writer killed mid-line
    write_records(path, [_record("b")])
    assert [r.prompt_id for r in read_records(path)] == ["a", "b"]
    # A file torn inside its header starts again with one.
    path.write_text('{"schema_ver')
    write_records(path, [_record("c")])
    assert [r.prompt_id for r in read_records(path)] == ["c"]


def test_a_refused_journal_append_leaves_a_journal_that_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    journal = tmp_path / "study.journal"
    study = optuna.create_study(storage=open_storage(None, journal), study_name="s")
    study.set_user_attr("kept", 1)
    before = journal.read_bytes()
    _refuse_writes_after(monkeypatch, 10)
    with pytest.raises(OSError, match="No space left"):
        study.set_user_attr("lost", "x" * 200)
    monkeypatch.undo()
    assert journal.read_bytes() == before
    check_journal(journal)  # whole lines: no "truncated, remove that line"
    again = optuna.load_study(storage=open_storage(None, journal), study_name="s")
    assert again.user_attrs == {"kept": 1}
    assert not list(tmp_path.glob("study.journal.lock*"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 KB tmpfs (root only); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_sweep_on_a_full_disk_says_so_and_resumes_once_space_is_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    out = small_disk / "run"
    full = run_cli([*SWEEP, "--out", str(out)], tmp_path, timeout=240)
    assert full.returncode == 1, full.stderr
    (line,) = [x for x in full.stderr.splitlines() if x.startswith("specbench: error:")]
    assert "no space left on device writing " in line and "internal error" not in line
    assert "run the same command again" in line and "not JSON" not in full.stderr
    # Every file is whole: the journal opens, every record and the results read.
    run = RunDirectory(out)
    check_journal(run.journal_path)
    assert read_records(run.requests_path)
    assert json.loads(run.results_path.read_text())["trials"]
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    resumed = run_cli([*SWEEP, "--out", str(out)], tmp_path, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert "30 configurations measured" in resumed.stdout
    assert run.read_results()["study"]["measured"] == 30
