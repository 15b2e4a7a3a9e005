"""Errors that the CLI turns into one clear line and an exit code.

Library code raises these instead of printing, so that the same functions can be used
from Python (where a traceback is useful) and from the CLI (where it is not).
Exit codes: 0 ok, 1 regression or failed run, 2 bad input.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class SpecbenchError(Exception):
    """Base class: a message meant for a user, and the exit code the CLI should use."""

    exit_code: int = EXIT_FAILURE


class BadInputError(SpecbenchError):
    """The user asked for something invalid: unknown name, malformed file, bad flag."""

    exit_code = EXIT_BAD_INPUT


class InvalidConfigError(BadInputError):
    """A speculative configuration that SGLang would reject or crash on."""


class FileFormatError(BadInputError):
    """A file that is missing, unreadable, of another schema, or lacks a field.

    The message always names the file and, where known, the field, because users fix
    these by hand.
    """

    def __init__(self, path: object, problem: str, field: str | None = None) -> None:
        where = f"{path}" + (f": field '{field}'" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.field = field
        self.problem = problem


class NotComparableError(BadInputError):
    """Two runs whose workloads differ, so comparing their numbers would mislead."""


class RunFailedError(SpecbenchError):
    """A measurement could not be completed (server died, no trial finished)."""

    exit_code = EXIT_FAILURE


class ServerError(RunFailedError):
    """A server failed to start, never became ready, or died; carries its log tail."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
