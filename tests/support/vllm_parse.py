"""Put launch lines through vLLM's own parser; run with the interpreter of .ci/vllm.sh.

Reads ``{"lines": [[word, ...], ...]}`` on stdin: each either the arguments of
``python -m vllm.entrypoints.openai.api_server`` (what specbench launches) or a whole
``vllm serve MODEL ...`` line (what it prints), as a shell splits them. Writes one JSON
object per line: ``{"ok": true, "values": {...}}`` with the parsed fields specbench sets,
or ``{"ok": false, "exit": N, "error": "..."}`` with the parser's last message.

The api_server module builds its parser as vllm/entrypoints/launchers/api_server/entry.py
does (``make_arg_parser(FlexibleArgumentParser())``); ``vllm serve`` adds the same
arguments to its subcommand (vllm/entrypoints/cli/serve.py, the model positional as
``model_tag``). Both are checked by ``validate_parsed_serve_args``. Nothing is loaded:
the values are what the line asked for. Imports nothing of specbench (not installed there).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import warnings
from typing import Any

#: The parsed fields (vLLM 0.32.0's EngineArgs names) that carry what specbench means.
FIELDS = (
    "model",
    "host",
    "port",
    "tensor_parallel_size",
    "enable_expert_parallel",
    "max_num_seqs",
    "dtype",
    "max_model_len",
    "enforce_eager",
    "served_model_name",
    "speculative_config",
)


def _parsers() -> tuple[Any, Any, Any]:
    warnings.simplefilter("ignore")
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    module_parser = make_arg_parser(FlexibleArgumentParser(prog="api_server"))
    cli = FlexibleArgumentParser(prog="vllm")
    subparsers = cli.add_subparsers(dest="subparser")
    ServeSubcommand().subparser_init(subparsers)
    return module_parser, cli, validate_parsed_serve_args


def _plain(value: Any) -> Any:
    """A parsed value as JSON (vLLM parses --speculative-config into an object)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _parse(parsers: tuple[Any, Any, Any], words: list[str]) -> dict[str, Any]:
    module_parser, cli, validate = parsers
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            if words[:2] == ["vllm", "serve"]:
                args: argparse.Namespace = cli.parse_args(words[1:])
                if getattr(args, "model_tag", None) is not None:
                    args.model = args.model_tag
            else:
                args = module_parser.parse_args(words)
            validate(args)
    except SystemExit as stop:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        return {"ok": False, "exit": stop.code, "error": lines[-1] if lines else ""}
    except Exception as exc:  # validate_parsed_serve_args raises plain exceptions
        return {"ok": False, "exit": 1, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "values": {name: _plain(getattr(args, name, None)) for name in FIELDS}}


def main() -> int:
    parsers = _parsers()
    request = json.load(sys.stdin)
    json.dump([_parse(parsers, words) for words in request["lines"]], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
