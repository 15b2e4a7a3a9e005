"""Helpers shared by the test packages (imported as ``tests.support.<module>``)."""

from __future__ import annotations

from pathlib import Path

#: tests/data: recorded topologies and the golden run directories.
DATA = Path(__file__).resolve().parent.parent / "data"
