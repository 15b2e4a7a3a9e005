"""Launch lines through an engine's own argument parser, in that engine's virtualenv.

The SGLang and vLLM parser tests each run a small script (sglang_parse.py, vllm_parse.py)
with the engine's python: lines go in as JSON on stdin, one result per line comes back.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def parse_in_engine_venv(python: str, script: Path, lines: list[list[str]]) -> list[dict[str, Any]]:
    """Each line's parse result ({"ok", "exit", "error", "values"}) from ``script``."""
    done = subprocess.run(
        [python, str(script)],
        input=json.dumps({"lines": lines}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results
