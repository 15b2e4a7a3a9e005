"""Put launch lines through SGLang's own parser; run with the interpreter of .ci/sglang.sh.

Reads ``{"lines": [[arg, ...], ...]}`` (each the arguments after ``python -m
sglang.launch_server``) on stdin and writes one JSON object per line, in order:
``{"ok": true, "values": {...}}`` with the parsed ServerArgs fields specbench sets, or
``{"ok": false, "exit": 2, "error": "..."}`` with the parser's own last message. With
``--check`` it only imports the parser and prints the SGLang version.

This runs outside specbench's environment (the SGLang venv has no specbench), so it
imports nothing of the project. ``prepare_server_args`` parses and builds ServerArgs
without resolving it (0.5.23 defers that to ``resolve_once``, which needs the model and a
GPU), so the values are what the line asked for, before SGLang's hooks adjust them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import types
import warnings
from typing import Any

#: The ServerArgs fields (0.5.23 names) that carry what specbench means by a line.
FIELDS = (
    "model_path",
    "host",
    "port",
    "tp_size",
    "ep_size",
    "speculative_algorithm",
    "speculative_draft_model_path",
    "speculative_num_steps",
    "speculative_eagle_topk",
    "speculative_num_draft_tokens",
    "speculative_dflash_block_size",
    "speculative_ngram_max_bfs_breadth",
    "speculative_ngram_max_trie_depth",
    "max_running_requests",
    "cuda_graph_max_bs_decode",
    "cuda_graph_max_bs_prefill",
    "speculative_adaptive",
    "speculative_adaptive_config",
)


class _KernelStub(types.ModuleType):
    """Stands in for triton, which sglang.srt.utils imports only to decorate GPU kernels
    (``@triton.jit``) and to patch one helper onto; parsing never runs a kernel. Any
    attribute is a decorator that hands back what it decorates."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def decorator(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and callable(args[0]) and not kwargs:
                return args[0]
            return lambda function: function

        return decorator


def _import_parser() -> Any:
    if importlib.util.find_spec("triton") is None:
        stub = _KernelStub("triton")
        stub.__path__ = []
        sys.modules["triton"] = stub
    warnings.simplefilter("ignore")
    from sglang.srt import server_args

    return server_args


def _parse(server_args: Any, argv: list[str]) -> dict[str, Any]:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            parsed = server_args.prepare_server_args(list(argv))
    except SystemExit as stop:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        return {"ok": False, "exit": stop.code, "error": lines[-1] if lines else ""}
    return {"ok": True, "values": {name: getattr(parsed, name, None) for name in FIELDS}}


def main() -> int:
    server_args = _import_parser()
    if sys.argv[1:] == ["--check"]:
        from importlib.metadata import version

        print(f"sglang {version('sglang')}")
        return 0
    request = json.load(sys.stdin)
    json.dump([_parse(server_args, argv) for argv in request["lines"]], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
