"""What the requests look like, as far as the model cares: context length and temperature.

Context length sets the KV bytes every decode step reads (so the baseline's cost and the
verify pass's tree attention), and temperature sets how often the target takes the
draft's token. Both used to be per-preset constants; a user's workload overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass

from specbench.errors import BadInputError


@dataclass(frozen=True)
class Workload:
    """Prompt and completion lengths (None: the preset's context) and sampling temperature."""

    input_len: int | None = None
    output_len: int | None = None
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.input_len is not None and self.input_len < 0:
            raise BadInputError(f"--input-len must be >= 0 (got {self.input_len})")
        if self.output_len is not None and self.output_len < 0:
            raise BadInputError(f"--output-len must be >= 0 (got {self.output_len})")
        if not 0.0 <= self.temperature <= 2.0 or self.temperature != self.temperature:
            raise BadInputError(f"--temperature must be in 0..2 (got {self.temperature})")

    def context_tokens(self, default: float) -> float:
        """Mean KV length over a request's decode: the prompt plus half the completion."""
        if self.input_len is None and self.output_len is None:
            return float(default)
        prompt = default if self.input_len is None else float(self.input_len)
        return prompt + (self.output_len or 0) / 2.0

    def summary(self, default: float) -> dict[str, object]:
        return {
            "input_len": self.input_len,
            "output_len": self.output_len,
            "context_tokens": self.context_tokens(default),
            "temperature": self.temperature,
        }
