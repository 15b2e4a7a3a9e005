"""The command group: one-line errors, values parsed alike by every command."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_cli_unknown_command_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "specbench", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("specbench: error:")
    assert "Traceback" not in proc.stderr


def test_concurrency_values_parse_the_same_for_every_command() -> None:
    from specbench.cli.values import parse_concurrency_list
    from specbench.errors import BadInputError

    assert parse_concurrency_list(" 8, 1,32,") == [8, 1, 32]
    for bad in ("1,x", "0", "-4", "1.5", ",", ""):
        with pytest.raises(BadInputError, match="--concurrency"):
            parse_concurrency_list(bad)
    for command in (
        ["predict", "--target", "minimax-m2.7"],
        ["sweep"],
        ["gate", "--baseline", "a", "--candidate", "b"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "specbench", *command, "--concurrency", "1,x"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.strip() == (
            "specbench: error: --concurrency: 'x' is not a positive integer (e.g. 1,8,32)"
        )
