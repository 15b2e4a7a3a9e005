"""`specbench report RUN_A RUN_B`: side by side when comparable, exit 2 when not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from specbench.cli import main
from specbench.errors import NotComparableError
from specbench.report.side_by_side import check_comparable, column_titles
from tests.support.run_dirs import write_run


def _report(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["report", *args])
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_two_comparable_runs_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nvlink = write_run(tmp_path / "nvlink", scenario="pays-everywhere", failed=0)
    staged = write_run(
        tmp_path / "staged", scenario="never-pays", hardware_class="host-staged", failed=0
    )
    out = tmp_path / "both.html"
    code, stdout, stderr = _report([str(nvlink), str(staged), "-o", str(out)], capsys)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    kinds = re.findall(r'class="verdict-box kind-([a-z-]+)"', html)
    assert kinds == ["speculate", "off"]
    assert html.count('class="run-column"') == 2
    assert "h200-nvlink" in html and "pcie-host-staged" in html


def test_runs_of_another_workload_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_run(tmp_path / "a", failed=0)
    second = write_run(tmp_path / "b", failed=0)
    manifest = second / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["workload"]["max_new_tokens"] = 512
    manifest.write_text(json.dumps(data), encoding="utf-8")
    code, _, stderr = _report([str(first), str(second)], capsys)
    assert code == 2
    assert stderr.startswith("specbench: error: ") and stderr.count("\n") == 1
    assert "is not comparable with" in stderr and "max_new_tokens" in stderr
    assert not (first / "comparison.html").exists()


def test_several_runs_refuse_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = write_run(tmp_path / "a", failed=0)
    code, _, stderr = _report([str(first), str(first), "--format", "md"], capsys)
    assert code == 2
    assert "drop --format md" in stderr


class _Workload:
    def __init__(self, digest: str) -> None:
        self.digest = digest

    def differences(self, other: _Workload) -> list[str]:
        return [] if other.digest == self.digest else [f"prompts: {self.digest} != {other.digest}"]


def test_comparability_and_column_titles() -> None:
    check_comparable([("a", _Workload("x")), ("b", _Workload("x"))])
    with pytest.raises(NotComparableError, match="b is not comparable with a"):
        check_comparable([("a", _Workload("x")), ("b", _Workload("y"))])
    assert column_titles(["h200", "l40s", "h200"]) == ["h200 (#1)", "l40s", "h200 (#2)"]
