"""The committed golden runs are exactly what make_golden.py produces."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from tests.support.gate_runs import GOLDEN


def test_make_golden_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_golden"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.main(tmp_path)

    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(GOLDEN)
        for p in GOLDEN.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    )
    assert produced == committed
    for rel in produced:
        if rel.name == "baseline.json":
            # the specbench version is stamped by whoever regenerates it
            new, old = (json.loads((d / rel).read_text()) for d in (tmp_path, GOLDEN))
            new.pop("specbench_version"), old.pop("specbench_version")
            assert new == old
        else:
            assert (tmp_path / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel
    total = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file())
    assert total < 200_000
