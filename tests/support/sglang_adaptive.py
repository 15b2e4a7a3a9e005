"""SGLang 0.5.23's own adaptive-speculation code, run on what specbench writes and simulates.

Run with the interpreter of .ci/sglang.sh (no specbench there: it imports nothing of the
project). Reads ``{"configs": [...], "slots": [{"initial": n, "cfg": {...}, "accepted":
[[...], ...]}]}`` on stdin and writes ``{"default": DEFAULT_ADAPTIVE_CONFIG, "loads":
[{"ok": true} | {"ok": false, "error": "..."}], "slots": [[steps after each update]]}``:
each config through ``_load_adaptive_config`` (and ``resolve_adaptive_strategy`` where
the release has it: the checks SGLang applies when it starts), each slot fed through ``AdaptiveStepSlot.update``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sglang_parse  # the triton stub, beside this file


def _load(module: Any, config: Any, folder: Path, index: int) -> dict[str, Any]:
    path = folder / f"config-{index}.json"
    path.write_text(json.dumps(config))
    try:
        # Later releases read a "strategy" key first; 0.5.23 has no such function.
        if hasattr(module, "resolve_adaptive_strategy"):
            module.resolve_adaptive_strategy(str(path))
        module._load_adaptive_config(str(path))
    except (ValueError, AttributeError, TypeError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True}


def main() -> int:
    sglang_parse._import_parser()
    from sglang.srt.speculative import adaptive_spec_params as module

    request = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as folder:
        loads = [_load(module, c, Path(folder), i) for i, c in enumerate(request["configs"])]
    slots = []
    for spec in request["slots"]:
        slot = module.AdaptiveStepSlot(spec["initial"], spec["cfg"])
        trajectory = []
        for accepted in spec["accepted"]:
            slot.update(accepted)
            trajectory.append(slot.current_steps)
        slots.append(trajectory)
    json.dump(
        {"default": module.DEFAULT_ADAPTIVE_CONFIG, "loads": loads, "slots": slots}, sys.stdout
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
