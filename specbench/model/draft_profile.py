"""Draft profiles: the acceptance of one draft model, as a file `predict` and `sweep` take.

A target preset ships with the acceptance of its usual EAGLE-3 draft. A draft profile
replaces it: another draft of the same target (EAGLE-2 instead of EAGLE-3), or the
acceptance fitted to a user's own measured run by `specbench.model.calibrate`. Shipped
profiles are TOML under data/drafts; fitted ones are versioned JSON with the same fields:

    schema_version = "1.0"             (JSON only; TOML files are shipped with the code)
    kind = "specbench.draft-profile"
    name, target (the preset it was fitted for), algorithm ("EAGLE" or "EAGLE3")
    draft_model_path (optional), sources (list of strings)
    acceptance.<chat|code|math> = {confidence_mu, confidence_sigma, agreement,
                                   depth_decay, temperature_loss}
    draft (optional table): vocab, aux_layers overriding the preset's draft shape
    fit (optional table, written by calibrate): the data and the fit's error
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from specbench.errors import BadInputError, FileFormatError
from specbench.model._data import (
    data_dir,
    get_int,
    get_str,
    get_str_list,
    get_table,
    read_toml,
    shipped_names,
)
from specbench.model.acceptance import DomainAcceptance
from specbench.model.targets import TargetPreset, parse_acceptance
from specbench.schema import read_json, write_json

KIND = "specbench.draft-profile"
ALGORITHMS = ("EAGLE", "EAGLE3")


@dataclass(frozen=True)
class DraftProfile:
    name: str
    target: str
    algorithm: str
    draft_model_path: str | None
    sources: tuple[str, ...]
    acceptance: tuple[tuple[str, DomainAcceptance], ...]
    draft_vocab: int | None = None
    aux_layers: tuple[int, ...] | None = None
    fit: Mapping[str, Any] | None = None

    def apply(self, target: TargetPreset) -> TargetPreset:
        """The target preset with this draft's acceptance (and shape) in place of its own."""
        draft = target.draft
        if self.draft_vocab is not None:
            draft = replace(draft, vocab=self.draft_vocab)
        if self.aux_layers is not None:
            draft = replace(draft, aux_layers=self.aux_layers)
        return replace(
            target,
            algorithm=self.algorithm,
            draft_model_path=self.draft_model_path or target.draft_model_path,
            acceptance=self.acceptance,
            draft=draft,
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "kind": KIND,
            "name": self.name,
            "target": self.target,
            "algorithm": self.algorithm,
            "draft_model_path": self.draft_model_path,
            "sources": list(self.sources),
            "acceptance": {
                d: {
                    "confidence_mu": p.confidence_mu,
                    "confidence_sigma": p.confidence_sigma,
                    "agreement": p.agreement,
                    "depth_decay": p.depth_decay,
                    "temperature_loss": p.temperature_loss,
                }
                for d, p in self.acceptance
            },
        }
        if self.draft_vocab is not None or self.aux_layers is not None:
            payload["draft"] = {
                k: v
                for k, v in (("vocab", self.draft_vocab), ("aux_layers", self.aux_layers))
                if v is not None
            }
        if self.fit is not None:
            payload["fit"] = dict(self.fit)
        return payload


def list_draft_profiles() -> list[str]:
    return shipped_names("drafts")


def write_draft_profile(path: Path, profile: DraftProfile) -> None:
    """A versioned JSON draft profile (what calibrate writes and predict reads)."""
    write_json(path, profile.to_payload())


def load_draft_profile(name_or_path: str) -> DraftProfile:
    """A shipped draft profile by name, a TOML file, or a JSON file written by calibrate."""
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return parse_draft_profile(path, read_json(path, kind="draft profile"))
    if suffix == ".toml":
        return parse_draft_profile(path, read_toml(path))
    shipped = data_dir("drafts") / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise BadInputError(
            f"unknown draft profile {name_or_path!r}; known: "
            f"{', '.join(list_draft_profiles())} (or a .json/.toml file)"
        )
    return parse_draft_profile(shipped, read_toml(shipped))


def parse_draft_profile(path: object, data: Mapping[str, Any]) -> DraftProfile:
    kind = data.get("kind", KIND)
    if kind != KIND:
        raise FileFormatError(path, f"not a draft profile (kind {kind!r})", field="kind")
    algorithm = get_str(path, data, "algorithm")
    if algorithm not in ALGORITHMS:
        raise FileFormatError(
            path,
            f"unknown algorithm {algorithm!r}; one of {', '.join(ALGORITHMS)}",
            field="algorithm",
        )
    model_path = data.get("draft_model_path")
    if model_path is not None and not isinstance(model_path, str):
        raise FileFormatError(path, "must be a string", field="draft_model_path")
    draft = data.get("draft", {})
    if not isinstance(draft, Mapping):
        raise FileFormatError(path, "must be a table", field="draft")
    aux = draft.get("aux_layers")
    if aux is not None and (not isinstance(aux, list) or not all(isinstance(x, int) for x in aux)):
        raise FileFormatError(path, "must be a list of layer indices", field="draft.aux_layers")
    fit = data.get("fit")
    if fit is not None and not isinstance(fit, Mapping):
        raise FileFormatError(path, "must be a table", field="fit")
    return DraftProfile(
        name=get_str(path, data, "name"),
        target=get_str(path, data, "target"),
        algorithm=algorithm,
        draft_model_path=model_path or None,
        sources=get_str_list(path, data, "sources"),
        acceptance=parse_acceptance(path, get_table(path, data, "acceptance")),
        draft_vocab=get_int(path, draft, "vocab", "draft.") if "vocab" in draft else None,
        aux_layers=None if aux is None else tuple(aux),
        fit=fit,
    )
