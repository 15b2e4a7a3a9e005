"""Shared memory a killed server leaves behind is removed; a live mapping is kept."""

from __future__ import annotations

import mmap
from pathlib import Path

from specbench.process.shm import remove_orphans, shm_files


def test_only_new_unmapped_files_are_removed(tmp_path: Path) -> None:
    pattern = str(tmp_path / "psm_*")
    old = tmp_path / "psm_old"
    old.write_bytes(b"x" * 16)
    before = shm_files(pattern)
    orphan = tmp_path / "psm_orphan"
    orphan.write_bytes(b"x" * 16)
    live = tmp_path / "psm_live"
    live.write_bytes(b"x" * 4096)
    with live.open("r+b") as fh, mmap.mmap(fh.fileno(), 4096):
        removed = remove_orphans(pattern, before)
    assert removed == [str(orphan)]
    assert old.exists() and live.exists() and not orphan.exists()
