"""Output paths refused up front, as one line."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from specbench.errors import BadInputError
from specbench.outpaths import check_output_dir, check_output_file, os_error_reason


def test_out_under_a_file_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInputError, match="is a file"):
        check_output_dir(blocker / "run")
    with pytest.raises(BadInputError, match="not a directory"):
        check_output_dir(blocker)
    with pytest.raises(BadInputError, match="is a file"):
        check_output_file(blocker / "report.html")


def test_forbidden_directory_is_bad_input() -> None:
    # sysfs refuses new directories to everyone, root included.
    with pytest.raises(BadInputError, match="cannot write there"):
        check_output_dir(Path("/sys/specbench-run"))
    with pytest.raises(BadInputError, match="cannot write there"):
        check_output_file(Path("/proc/specbench/report.html"))


def test_read_only_filesystem_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A read-only mount needs privileges a test cannot count on: the errno the kernel
    # gives for one (EROFS) is injected where the directory is created.
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(BadInputError, match="read-only file system"):
        check_output_dir(tmp_path / "run")


def test_writable_directory_is_created_and_left_clean(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    check_output_dir(target)
    assert target.is_dir() and list(target.iterdir()) == []
    check_output_file(tmp_path / "c" / "report.html")
    assert (tmp_path / "c").is_dir()


def test_os_error_reason_is_locale_independent() -> None:
    assert os_error_reason(OSError(errno.EACCES, "Zugriff verweigert")) == "permission denied"
