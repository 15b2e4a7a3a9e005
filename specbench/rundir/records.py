"""Per-request records: the raw samples every metric, report and gate is computed from.

Records are kept raw (not only aggregated) because the gate's Mann-Whitney test needs
the per-request samples, and because a tau distribution says more than its mean.
Field names carry their units (guidellm style: ``ttft_ms``, ``e2e_ms``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from specbench.errors import FileFormatError
from specbench.rundir.chunk_summary import ITL_SUMMARY_FIELDS, compact_record
from specbench.schema import (
    SCHEMA_VERSION,
    append_whole,
    check_schema_version,
    dumps,
    write_text_atomic,
)

#: GPU engines decode one stream at hundreds to a few thousand tokens/s; a stream whose
#: tokens arrive faster than this was buffered and released at once, not decoded.
MAX_STREAM_TOKENS_PER_S = 10_000.0


@dataclass
class RequestRecord:
    """One request as the client saw it, plus the server's speculation counters."""

    prompt_id: str
    domain: str
    prompt_tokens: int
    completion_tokens: int
    #: Verify forwards the server ran for this request (SGLang meta_info.spec_verify_ct);
    #: None for the baseline or when the server does not report it.
    spec_verify_ct: int | None
    ttft_ms: float | None
    e2e_ms: float | None
    itl_ms: list[float] = field(default_factory=list)
    #: Server-reported accept length (newer SGLang); tau is recomputed from the counters.
    spec_accept_length: float | None = None
    error: str | None = None
    #: Filled in by the sweep when the record is stored.
    trial_number: int | None = None
    config_key: str = ""
    concurrency: int = 0
    simulated: bool = False
    started_at: float | None = None
    #: Time spent waiting for a connection (client pool + TCP connect), kept out of the
    #: measurement window; None when not measured (the simulator, older records).
    connect_ms: float | None = None
    #: The server's own arrival-to-finish time (SGLang meta_info.e2e_latency), when sent.
    server_e2e_ms: float | None = None
    #: This request's own ITL percentiles, stored when the chunk list is not (see
    #: chunk_summary); None while ``itl_ms`` holds the samples.
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    itl_ms_p99: float | None = None
    #: Draft tokens the engine accepted (vLLM); tau then counts verify + accepted.
    spec_accepted_tokens: int | None = None
    #: Verify steps by number of accepted drafts (index j: exactly j accepted).
    spec_accept_histogram: list[int] | None = None
    #: SHA-256 of the generated text and its first characters: the losslessness check
    #: compares them between the baseline and every speculative configuration.
    output_sha256: str | None = None
    output_head: str | None = None
    #: Tokens the first chunk with tokens carried, when more than one: a server that
    #: coalesces its stream (vLLM's API server when starved of CPU) releases several, or
    #: all, at once. They arrived at TTFT, so the decode speed counts only the rest.
    first_chunk_tokens: int | None = None
    #: Why the latency is the client's clock and not the server's (the engine sent
    #: none); None when the server's own latency was checked and used.
    latency_fallback: str | None = None
    #: The request-rate load it was sent in ("2 req/s"); None for a closed-loop load.
    load: str | None = None
    #: Seconds after its load started that it was due and that it was sent (later than
    #: due when ``--max-concurrency`` held it); None for a closed-loop load.
    due_s: float | None = None
    sent_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tau(self) -> float | None:
        """Tokens per verify step for this request: completion / verify count, or
        1 + accepted / steps where the engine reports accepted drafts (vLLM)."""
        if self.error is not None or not self.spec_verify_ct:
            return None
        if self.spec_accepted_tokens is not None:
            return 1.0 + self.spec_accepted_tokens / self.spec_verify_ct
        return self.completion_tokens / self.spec_verify_ct

    @property
    def output_tokens_per_s(self) -> float | None:
        """Decode speed of this stream: tokens after the first chunk over the time after
        TTFT. None when no decode was observed: nothing arrived after the first chunk,
        or the rest arrived faster than any engine decodes one stream (the server or the
        client buffered the stream and released it at once; seen on a CPU-starved vLLM
        API server at 21,000 tok/s), where a near-zero window would give a huge speed."""
        if self.error is not None or self.e2e_ms is None or self.ttft_ms is None:
            return None
        decode_ms = self.e2e_ms - self.ttft_ms
        after_first = self.completion_tokens - (self.first_chunk_tokens or 1)
        if after_first <= 0 or decode_ms <= 0:
            return None
        speed = after_first / (decode_ms / 1000.0)
        return speed if speed <= MAX_STREAM_TOKENS_PER_S else None

    def to_dict(self) -> dict[str, Any]:
        # Shallow per field (asdict deep-copies every ITL list: most of a sweep's write time).
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["itl_ms"] = list(self.itl_ms)
        for name in (
            *(name for name, _ in ITL_SUMMARY_FIELDS),
            "first_chunk_tokens",
            "latency_fallback",
            "load",
            "due_s",
            "sent_s",
        ):
            if data[name] is None:
                del data[name]  # absent, not null: files written before them stay identical
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: object = "<record>") -> RequestRecord:
        """Rebuild a record, naming the file and field when a value is missing or wrong."""
        known = {f.name for f in fields(cls)}
        required = ("prompt_id", "domain", "prompt_tokens", "completion_tokens")
        for name in required:
            if name not in data:
                raise FileFormatError(path, "missing", field=name)
        for name, kinds in _FIELD_TYPES.items():
            value = data.get(name)
            if value is None and (name in _NULLABLE or (name not in data and name not in required)):
                continue
            if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
                expected = " or ".join(k.__name__ for k in kinds)
                raise FileFormatError(path, f"expected {expected}", field=name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                _check_number(path, name, value)
        itl = data.get("itl_ms", [])
        if not isinstance(itl, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < math.inf
            for v in itl
        ):
            raise FileFormatError(
                path, "expected a list of finite, non-negative numbers", field="itl_ms"
            )
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("spec_verify_ct", None)
        kwargs.setdefault("ttft_ms", None)
        kwargs.setdefault("e2e_ms", None)
        return cls(**kwargs)


def _check_number(path: object, name: str, value: float) -> None:
    """A stored number is finite, and a count or a client-timed span is not negative:
    the writer never stores anything else, so a NaN here was put there by hand."""
    if not math.isfinite(value):
        raise FileFormatError(path, f"{value} is not a measured value", field=name)
    if value < 0 and name in _NON_NEGATIVE:
        raise FileFormatError(path, f"{value:g} is impossible (never negative)", field=name)


REQUESTS_KIND = "specbench.requests"

#: Counts and spans the client timed itself, which cannot be negative.
_NON_NEGATIVE = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "spec_verify_ct",
        "ttft_ms",
        "e2e_ms",
        "connect_ms",
        "itl_ms_p50",
        "itl_ms_p90",
        "itl_ms_p99",
        "spec_accepted_tokens",
        "first_chunk_tokens",
    }
)

#: Types a stored record's fields must have; a hand-edited file fails here, naming the
#: field, instead of with a TypeError inside a metric. Optional fields may also be null.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "prompt_id": (str,),
    "domain": (str,),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "spec_verify_ct": (int,),
    "ttft_ms": (int, float),
    "e2e_ms": (int, float),
    "spec_accept_length": (int, float),
    "error": (str,),
    "trial_number": (int,),
    "config_key": (str,),
    "concurrency": (int,),
    "simulated": (bool,),
    "first_chunk_tokens": (int,),
    "latency_fallback": (str,),
    "load": (str,),
    "due_s": (int, float),
    "sent_s": (int, float),
    "started_at": (int, float),
    "connect_ms": (int, float),
    "server_e2e_ms": (int, float),
    "itl_ms_p50": (int, float),
    "itl_ms_p90": (int, float),
    "itl_ms_p99": (int, float),
    "spec_accepted_tokens": (int,),
    "output_sha256": (str,),
    "output_head": (str,),
}
_NULLABLE = frozenset(
    {
        "spec_verify_ct",
        "ttft_ms",
        "e2e_ms",
        "spec_accept_length",
        "error",
        "trial_number",
        "started_at",
        "connect_ms",
        "server_e2e_ms",
        "itl_ms_p50",
        "itl_ms_p90",
        "itl_ms_p99",
        "spec_accepted_tokens",
        "output_sha256",
        "output_head",
        "latency_fallback",
        "load",
        "due_s",
        "sent_s",
    }
)


def write_records(
    path: Path,
    records: Iterable[RequestRecord],
    *,
    append: bool = True,
    compact: bool = False,
    keep_chunks: bool = True,
) -> None:
    """Append records as JSON lines; the first line of a new file is a schema header.

    ``compact`` (what a sweep writes) summarises each record's ITL list unless
    ``keep_chunks``, leaves absent fields out and rounds floats (chunk_summary); readers
    accept both forms. The lines are appended whole or not at all (schema.append_whole:
    a full disk leaves the file as it was), under the caller's lock on the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = dumps({"kind": REQUESTS_KIND}, indent=None) + "\n"
    lines: list[str] = []
    for record in records:
        if compact:
            data = compact_record(record.to_dict(), keep_chunks=keep_chunks)
            lines.append(json.dumps(data, allow_nan=False, separators=(",", ":")))
        else:
            lines.append(json.dumps(record.to_dict(), allow_nan=False))
    text = "".join(f"{line}\n" for line in lines)
    if append:
        append_whole(path, text.encode("utf-8"), header=header.encode("utf-8"))
    else:
        write_text_atomic(path, header + text)


def iter_records(path: Path) -> Iterator[RequestRecord]:
    """Read a requests.jsonl written by write_records, checking its schema header."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    with fh:
        header_line = fh.readline()
        try:
            header = json.loads(header_line) if header_line.strip() else None
        except json.JSONDecodeError:
            raise FileFormatError(path, "line 1 is not JSON (expected the schema header)") from None
        if not isinstance(header, dict) or header.get("kind") != REQUESTS_KIND:
            raise FileFormatError(path, "line 1 is not a specbench requests header", field="kind")
        check_schema_version(path, header)
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                # A sweep killed mid-write leaves a torn last line; everything before it is good.
                raise FileFormatError(path, f"line {lineno} is not JSON: {exc.msg}") from None
            if not isinstance(data, dict):
                raise FileFormatError(path, f"line {lineno} is not a JSON object")
            yield RequestRecord.from_dict(data, path=f"{path}:{lineno}")


def read_records(path: Path) -> list[RequestRecord]:
    return list(iter_records(path))


__all__ = [
    "REQUESTS_KIND",
    "SCHEMA_VERSION",
    "RequestRecord",
    "iter_records",
    "read_records",
    "write_records",
]
