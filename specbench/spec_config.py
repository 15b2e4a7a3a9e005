"""The speculative configuration: one typed value from the CLI to the run directory.

Every part of specbench (model, harness, sweep, report, gate) speaks of a configuration
as a ``SpecConfig``; ``None`` in its place means the no-speculation baseline. A config
names its speculative ``method`` (spec_methods: eagle3, mtp, draft_model, ngram, ...),
holds the shared draft shape ``(num_steps, topk, num_draft_tokens)`` (a tree for
EAGLE-style methods on SGLang, a chain of k = num_steps tokens elsewhere) and the
method's own parameters under its engine's names (``prompt_lookup_max`` for vLLM's
n-gram, ``speculative_ngram_max_bfs_breadth`` for SGLang's).

A ``SpecConfig`` is valid by construction: ``__post_init__`` applies the method's rules
(for EAGLE3, SGLang's: it enforces some at start-up and crashes mid-run on others,
"selected index k out of range"), so a sweep never spends minutes launching a server for
a configuration that cannot run and no later stage checks again. Text enters through
``SpecConfig.parse`` and table columns through ``SpecConfig.from_fields``; the ``key``
("3-4-8", "ngram-3-1-4_prompt_lookup_max=4") is derived from the value for file names
and table rows and is never split back into numbers.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from specbench.errors import BadInputError, InvalidConfigError
from specbench.spec_methods import DEFAULT_METHOD, METHOD_NAMES
from specbench.spec_methods import method as method_entry

#: EAGLE3-style drafting (SGLang ``--speculative-algorithm EAGLE3``, vLLM
#: ``{"method": "eagle3"}``): the method of every configuration written before methods
#: were a dimension, and of a configuration that names none.
EAGLE3 = DEFAULT_METHOD
#: Every method a configuration can name (spec_methods.CATALOGUE).
METHODS: tuple[str, ...] = METHOD_NAMES
#: A method parameter's value: an integer (window sizes, depths, breadths).
ParamValue = int

#: Bounds of the search space; inside them invalid_reason keeps what SGLang accepts.
NUM_STEPS_RANGE: tuple[int, ...] = tuple(range(1, 9))
TOPK_CHOICES: tuple[int, ...] = (1, 2, 4, 8)
MIN_DRAFT_TOKENS = 2
MAX_DRAFT_TOKENS = 64

#: Key used for the no-speculation baseline wherever a configuration key is expected.
BASELINE_KEY = "baseline"

#: The numeric fields of an EAGLE3 configuration, in key order (also the Optuna
#: parameter names and the trials.csv column names).
NUMBER_FIELDS: tuple[str, ...] = ("num_steps", "topk", "num_draft_tokens")

_TRIPLE = re.compile(r"^\s*(\d+)\s*[,:x/-]\s*(\d+)\s*[,:x/-]\s*(\d+)\s*$")
#: ``ngram:3,1,4`` / ``ngram:3,1,4:prompt_lookup_max=4,prompt_lookup_min=2``.
_WITH_METHOD = re.compile(r"^\s*([A-Za-z][A-Za-z_0-9]*)\s*:\s*([^:]+?)\s*(?::\s*(.*))?$")
#: Column prefix of a method parameter in trials.csv rows and Optuna parameters.
PARAM_PREFIX = "param."


@dataclass(frozen=True, order=True)
class SpecConfig:
    """One speculative configuration: for EAGLE3, draft depth, branching per step and
    verified node budget. Construction refuses an invalid one (InvalidConfigError)."""

    num_steps: int
    topk: int
    num_draft_tokens: int
    method: str = EAGLE3
    #: The method's own parameters, ``(engine name, value)`` sorted by name.
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidConfigError(
                f"unknown speculative method {self.method!r} (expected {', '.join(METHODS)})"
            )
        self._check_params()
        for name in NUMBER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidConfigError(f"configuration {name} must be an integer (got {value!r})")
            object.__setattr__(self, name, int(value))  # numpy integers from tables
        reason = invalid_reason(self.num_steps, self.topk, self.num_draft_tokens)
        if reason is None and self.topk != 1 and not method_entry(self.method).tree_numbers:
            reason = f"{self.method} drafts a chain (topk 1); its own parameters shape the rest"
        if reason is not None:
            raise InvalidConfigError(
                f"invalid configuration {self.num_steps},{self.topk},{self.num_draft_tokens}: "
                f"{reason}"
            )

    def _check_params(self) -> None:
        """Parameters as sorted (name, int) pairs, each named once, for methods that
        have parameters (an EAGLE config with a window size is a mistake)."""
        pairs: list[tuple[str, ParamValue]] = []
        for item in self.params:
            name, value = item[0], cast(object, item[1])
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidConfigError(
                    f"{self.method} parameter {name} must be an integer (got {value!r})"
                )
            pairs.append((str(name), int(value)))
        pairs.sort()
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise InvalidConfigError(f"{self.method} parameter named twice in {names}")
        entry = method_entry(self.method)
        known = {p.name for e in (entry.sglang, entry.vllm) if e is not None for p in e.params}
        unknown = sorted(set(names) - known)
        if unknown:
            raise InvalidConfigError(
                f"{self.method} has no parameter {', '.join(unknown)} "
                f"(its parameters: {', '.join(sorted(known)) or 'none'})"
            )
        object.__setattr__(self, "params", tuple(pairs))

    def param(self, name: str) -> ParamValue | None:
        """The value of parameter ``name``; None when the config leaves it to the engine."""
        return dict(self.params).get(name)

    @classmethod
    def parse(cls, text: str) -> SpecConfig:
        """Parse ``"3,4,8"`` (also ``3-4-8``, ``3x4x8``) into an EAGLE3 configuration, or
        ``"ngram:3,1,4:prompt_lookup_max=4"`` into one of another method."""
        method, numbers_text, params_text = EAGLE3, text, ""
        named = _WITH_METHOD.match(text)
        if named is not None:
            method, numbers_text, params_text = named.group(1), named.group(2), named.group(3)
            try:
                method = method_entry(method).name
            except BadInputError as exc:
                raise InvalidConfigError(str(exc)) from None
        match = _TRIPLE.match(numbers_text)
        if match is None:
            raise InvalidConfigError(
                f"cannot read configuration {text!r}: expected num_steps,topk,num_draft_tokens "
                "such as 3,4,8 (or method:3,1,4[:name=value,...] such as ngram:3,1,4)"
            )
        steps, topk, ndt = (int(g) for g in match.groups())
        return cls(steps, topk, ndt, method, _parse_params(text, params_text or ""))

    @classmethod
    def parse_list(cls, texts: Iterable[str]) -> list[SpecConfig]:
        """Several configurations (repeated ``--config``, or ``"3,4,8;ngram:3,1,4"``)."""
        return [cls.parse(part) for text in texts for part in text.split(";") if part.strip()]

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> SpecConfig:
        """The configuration a table row or JSON object describes by its columns.

        Rows of trials.csv, results.json and the Optuna study carry ``num_steps``,
        ``topk`` and ``num_draft_tokens`` (whole floats where pandas read a column with
        gaps); a ``method`` column is optional, EAGLE3 when absent (every file written
        before methods), and a method's parameters are ``param.<name>`` columns (empty
        where another method's row left them).
        """
        method = fields.get("method")
        if method is None or (isinstance(method, float) and math.isnan(method)) or method == "":
            method = EAGLE3
        params = []
        for column, value in fields.items():
            if not isinstance(column, str) or not column.startswith(PARAM_PREFIX):
                continue
            if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
                continue
            params.append((column[len(PARAM_PREFIX) :], value))
        text = fields.get("method_params")
        if isinstance(text, str) and text.strip():
            params += _parse_params(text, text)
        values: list[int] = []
        for name in NUMBER_FIELDS:
            value = fields.get(name)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidConfigError(
                    f"configuration field {name} must be an integer (got {value!r})"
                )
            values.append(int(value))
        return cls(values[0], values[1], values[2], str(method), tuple(params))

    @property
    def key(self) -> str:
        """Stable short name derived from the value, used in file names and table rows:
        ``"3-4-8"`` for EAGLE3 (as in every file before methods), ``"ngram-3-1-4"`` with
        ``_name=value`` per parameter for another method. Never parse it."""
        shape = f"{self.num_steps}-{self.topk}-{self.num_draft_tokens}"
        if self.method == EAGLE3 and not self.params:
            return shape
        return f"{self.method}-{shape}" + "".join(f"_{n}={v}" for n, v in self.params)

    def as_dict(self) -> dict[str, Any]:
        """The numbers, as results.json, recommendation.json and the Optuna study store
        them; the method and its parameters (``param.<name>``) only where it is not
        EAGLE3, so files of EAGLE3 runs read as they always did."""
        out: dict[str, Any] = {name: getattr(self, name) for name in NUMBER_FIELDS}
        if self.method != EAGLE3 or self.params:
            out["method"] = self.method
            out.update({PARAM_PREFIX + name: value for name, value in self.params})
        return out

    def __str__(self) -> str:
        shape = f"steps={self.num_steps}, topk={self.topk}, draft_tokens={self.num_draft_tokens}"
        if self.method == EAGLE3 and not self.params:
            return f"({shape})"
        extra = "".join(f", {n}={v}" for n, v in self.params)
        return f"{self.method} ({shape}{extra})"


def _parse_params(text: str, params_text: str) -> tuple[tuple[str, ParamValue], ...]:
    """``"prompt_lookup_max=4,prompt_lookup_min=2"`` -> pairs (one line when unreadable)."""
    pairs: list[tuple[str, ParamValue]] = []
    for part in params_text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise InvalidConfigError(
                f"cannot read configuration {text!r}: parameter {part.strip()!r} is not "
                "name=integer"
            )
        pairs.append((name.strip(), int(value)))
    return tuple(pairs)


def params_text(config: SpecConfig) -> str:
    """The method's parameters as ``"name=value,..."`` (trials.csv ``method_params``;
    empty where the method has none set)."""
    return ",".join(f"{name}={value}" for name, value in config.params)


def config_key(config: SpecConfig | None) -> str:
    """Key of a configuration, with ``"baseline"`` for no speculation."""
    return BASELINE_KEY if config is None else config.key


def invalid_reason(num_steps: int, topk: int, num_draft_tokens: int) -> str | None:
    """Why SGLang would reject or crash on this triple, or None when it is valid.

    The reasons are phrased for users: they say which flag to change.
    """
    if num_steps < 1:
        return f"--speculative-num-steps must be >= 1 (got {num_steps})"
    if topk < 1:
        return f"--speculative-eagle-topk must be >= 1 (got {topk})"
    if num_draft_tokens < MIN_DRAFT_TOKENS:
        return (
            f"--speculative-num-draft-tokens must be >= {MIN_DRAFT_TOKENS} (got {num_draft_tokens})"
        )
    if topk == 1 and num_draft_tokens != num_steps + 1:
        return (
            f"with --speculative-eagle-topk 1 the tree is a chain, so SGLang forces "
            f"--speculative-num-draft-tokens = num_steps + 1 = {num_steps + 1} "
            f"(got {num_draft_tokens})"
        )
    pool = num_steps * topk
    if num_draft_tokens - 1 > pool:
        return (
            f"--speculative-num-draft-tokens {num_draft_tokens} asks to verify "
            f"{num_draft_tokens - 1} draft nodes but {num_steps} steps x topk {topk} "
            f"propose only {pool} (SGLang fails with 'selected index out of range'); "
            f"use at most {pool + 1}"
        )
    return None


def valid_configs(
    num_steps: Sequence[int] = NUM_STEPS_RANGE,
    topks: Sequence[int] = TOPK_CHOICES,
    draft_tokens: Sequence[int] | None = None,
) -> list[SpecConfig]:
    """Every valid configuration in the given ranges, in a stable sorted order."""
    ndts = (
        list(draft_tokens)
        if draft_tokens is not None
        else list(range(MIN_DRAFT_TOKENS, MAX_DRAFT_TOKENS + 1))
    )
    out = [
        SpecConfig(s, k, n)
        for s in sorted(set(num_steps))
        for k in sorted(set(topks))
        for n in sorted(set(ndts))
        if invalid_reason(s, k, n) is None
    ]
    return out
