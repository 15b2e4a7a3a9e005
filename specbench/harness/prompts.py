"""Prompts: the built-in chat/code/math mix, user datasets, and the workload fingerprint.

Acceptance length depends strongly on what is being generated (code and math are more
predictable than open chat), so every prompt carries a domain and results can be split
by it. The prompt set is hashed into the workload fingerprint because two runs are only
comparable when they asked the same questions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, FileFormatError
from specbench.model import TargetPreset
from specbench.rundir.layout import WorkloadFingerprint

DEFAULT_DOMAIN = "chat"

#: Characters per token of the estimate below; ~4 is the usual figure for English text
#: and source code under BPE tokenizers with large vocabularies.
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Prompt:
    """One request's input; ``id`` is stable so records can be joined across runs."""

    id: str
    domain: str
    text: str
    #: True when the dataset gave messages: OpenAI-style engines then get the chat API
    #: (the server applies the model's chat template).
    chat: bool = False


def estimate_tokens(text: str) -> int:
    """A deterministic prompt-length estimate (about 4 characters per token, at least 1).

    The simulator and ``serve-sim`` have no tokenizer; both use this one function so a
    simulated run and a run against serve-sim report the same prompt_tokens.
    """
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _builtin_path() -> Any:
    return resources.files("specbench.harness").joinpath("data/prompts.jsonl")


def builtin_prompts() -> list[Prompt]:
    """The shipped mix: original chat, code and math prompts of varied lengths."""
    resource = _builtin_path()
    text = resource.read_text(encoding="utf-8")
    prompts = list(_parse_jsonl(str(resource), text.splitlines()))
    if not prompts:  # pragma: no cover - the package data is checked by the tests
        raise BadInputError(f"{resource}: the built-in prompt file is empty")
    return prompts


def load_dataset(path: Path | str) -> list[Prompt]:
    """Read a user dataset: JSONL or a JSON array of prompt or ShareGPT objects.

    Each object has ``prompt`` (or ``text``) and an optional ``domain`` (default
    "chat"), or ShareGPT ``conversations``/``messages`` whose first human turn is used.
    Errors name the file and the line (JSONL) or array index (JSON) and the field.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, expected a JSONL or JSON file") from None
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    stripped = raw.lstrip()
    if stripped.startswith("["):
        prompts = _parse_json_array(path, raw)
    else:
        prompts = list(_parse_jsonl(str(path), raw.splitlines()))
    if not prompts:
        raise BadInputError(f"{path}: the dataset has no prompts")
    return prompts


def _parse_json_array(path: Path, raw: str) -> list[Prompt]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            path, f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, list):  # pragma: no cover - starts with "[" so it is a list
        raise FileFormatError(path, "expected a JSON array of objects")
    out: list[Prompt] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        prompt = _prompt_from_object(item, where=f"{path}: item {index}", default_id=f"p{index}")
        out.append(_unique(prompt, seen))
    return out


def _parse_jsonl(name: str, lines: Iterable[str]) -> Iterator[Prompt]:
    seen: set[str] = set()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileFormatError(name, f"line {lineno} is not valid JSON: {exc.msg}") from None
        prompt = _prompt_from_object(item, where=f"{name}: line {lineno}", default_id=f"p{lineno}")
        yield _unique(prompt, seen)


def _unique(prompt: Prompt, seen: set[str]) -> Prompt:
    # Records are joined on prompt_id, so duplicated ids in a dataset get a suffix
    # instead of silently merging two different prompts.
    pid = prompt.id
    n = 1
    while pid in seen:
        n += 1
        pid = f"{prompt.id}#{n}"
    seen.add(pid)
    return prompt if pid == prompt.id else replace(prompt, id=pid)


def _prompt_from_object(item: Any, *, where: str, default_id: str) -> Prompt:
    if not isinstance(item, dict):
        raise FileFormatError(where, f"expected a JSON object, got {type(item).__name__}")
    text: Any
    chat = False
    if "prompt" in item or "text" in item:
        key = "prompt" if "prompt" in item else "text"
        text = item[key]
        if not isinstance(text, str):
            raise FileFormatError(where, "expected a string", field=key)
    elif "conversations" in item or "messages" in item:
        key = "conversations" if "conversations" in item else "messages"
        text = _first_human_turn(item[key], where=where, key=key)
        chat = True
    else:
        raise FileFormatError(
            where, "missing (expected 'prompt', 'text' or ShareGPT 'conversations')", field="prompt"
        )
    if not text.strip():
        raise FileFormatError(where, "empty prompt text", field="prompt")
    domain = item.get("domain", DEFAULT_DOMAIN)
    if not isinstance(domain, str) or not domain.strip():
        raise FileFormatError(where, "expected a non-empty string", field="domain")
    raw_id = item.get("id", default_id)
    if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
        raise FileFormatError(where, "expected a string or integer", field="id")
    return Prompt(id=str(raw_id), domain=domain.strip(), text=text, chat=chat)


_HUMAN_ROLES = ("human", "user")


def _first_human_turn(turns: Any, *, where: str, key: str) -> str:
    if not isinstance(turns, list):
        raise FileFormatError(where, "expected a list of turns", field=key)
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise FileFormatError(where, "expected an object", field=f"{key}[{index}]")
        role = turn.get("from", turn.get("role"))
        if isinstance(role, str) and role.lower() in _HUMAN_ROLES:
            value = turn.get("value", turn.get("content"))
            if not isinstance(value, str):
                raise FileFormatError(where, "expected a string", field=f"{key}[{index}].value")
            return value
    raise FileFormatError(where, "no human turn", field=key)


def prompts_sha256(prompts: Sequence[Prompt]) -> str:
    """Hash of the ordered (id, domain, text) triples: the prompt part of comparability.

    Length-prefixed JSON of each field, so no two different prompt lists can collide by
    shifting text between neighbouring fields.
    """
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(json.dumps([prompt.id, prompt.domain, prompt.text]).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def workload_fingerprint(
    target: TargetPreset,
    prompts: Sequence[Prompt],
    max_new_tokens: int,
    dataset: str = "builtin",
) -> WorkloadFingerprint:
    """The fingerprint two runs must share to be compared by the gate.

    The temperature is always 0: the
    harness sends greedy requests because sampling noise would blur tau.
    """
    return WorkloadFingerprint(
        target_model=str(target.model_path),
        draft_model=str(target.draft_model_path),
        algorithm=str(target.algorithm),
        prompts_sha256=prompts_sha256(prompts),
        num_prompts=len(prompts),
        max_new_tokens=int(max_new_tokens),
        dataset=dataset,
        temperature=0.0,
    )


__all__ = [
    "CHARS_PER_TOKEN",
    "Prompt",
    "builtin_prompts",
    "estimate_tokens",
    "load_dataset",
    "prompts_sha256",
    "workload_fingerprint",
]
