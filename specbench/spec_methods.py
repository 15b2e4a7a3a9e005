"""The speculative methods specbench can compare, each spelled as each engine spells it.

A deployer first picks a method (an EAGLE head, the target's own MTP layers, a small
draft model, n-gram lookup, suffix trees, a DFlash block drafter), then its settings.
This catalogue is the one place that knows, per method: what drafts (a separate model,
the target's MTP layers, or nothing), whether the performance model can price it, and,
per engine, the engine's own name for it and the parameters the search may vary beyond
the shared draft shape ``(num_steps, topk, num_draft_tokens)``.

Names were read in the engines' sources: SGLang 0.5.23 ``arg_groups/fields/spec.py``
(``--speculative-algorithm`` EAGLE, EAGLE3, NEXTN, STANDALONE, NGRAM, DFLASH;
``--speculative-ngram-max-bfs-breadth``, ``--speculative-ngram-max-trie-depth``,
``--speculative-dflash-block-size``) with its ``arg_groups/speculative_hook.py`` (NEXTN is
EAGLE over the target's own layers; NGRAM sets topk from the BFS breadth and defaults 12
draft tokens; DFLASH forces one step of topk 1 and takes the block size as the verify
window); vLLM 0.32 ``vllm/config/speculative.py`` (``method`` eagle, eagle3, mtp,
draft_model, ngram with ``prompt_lookup_min``/``prompt_lookup_max``, suffix with
``suffix_decoding_max_tree_depth``, dflash). SGLang has no suffix decoding.

Method parameters keep the engine's own names (an SGLang ServerArgs field, a vLLM
``--speculative-config`` key), so a configuration's parameters are meaningful to one
engine; the flag builders refuse a parameter their engine does not name.
"""

from __future__ import annotations

from dataclasses import dataclass

from specbench.errors import BadInputError

#: Where a method's draft tokens come from.
DRAFT_MODEL = "model"  # a separate checkpoint (an EAGLE head, a small LM, a DFlash drafter)
TARGET_LAYERS = "target"  # the target's own MTP / next-token layers
NO_DRAFT = "none"  # the text itself (n-gram lookup, suffix trees)
DRAFT_KINDS = (DRAFT_MODEL, TARGET_LAYERS, NO_DRAFT)


@dataclass(frozen=True)
class MethodParam:
    """One parameter of a method on one engine, under the engine's own name."""

    #: The engine's name: an SGLang ServerArgs field (its flag is ``--`` + dashes) or a
    #: vLLM ``--speculative-config`` key.
    name: str
    #: The values the search tries (a small grid; the engine accepts more).
    choices: tuple[int, ...]


@dataclass(frozen=True)
class EngineMethod:
    """A method as one engine offers it."""

    #: The engine's name for the method (SGLang's algorithm, vLLM's ``method``).
    name: str
    #: True where the engine drafts a tree for it (topk > 1 allowed), else a chain.
    tree: bool
    params: tuple[MethodParam, ...] = ()

    def param(self, name: str) -> MethodParam | None:
        """The parameter called ``name``, or None when the engine has none such."""
        return next((p for p in self.params if p.name == name), None)


@dataclass(frozen=True)
class Method:
    """One speculative method, engine-neutral (``name`` is specbench's spelling)."""

    name: str
    #: DRAFT_MODEL, TARGET_LAYERS or NO_DRAFT.
    draft: str
    #: True where the performance model describes it (acceptance profile and draft
    #: cost); otherwise it is measured only, and a prediction says "not simulated".
    priced: bool
    #: True where the shared numbers may describe a tree (topk > 1: EAGLE-style
    #: drafting on SGLang); False where they are a chain of k drafted tokens, the
    #: method's own parameters saying the rest (n-gram breadth, suffix depth, DFlash).
    tree_numbers: bool
    sglang: EngineMethod | None
    vllm: EngineMethod | None
    summary: str

    def on(self, engine: str) -> EngineMethod | None:
        """The method as ``engine`` ("sglang", "vllm") offers it; None when it does not."""
        return {"sglang": self.sglang, "vllm": self.vllm}.get(engine)


_NGRAM_SGLANG = EngineMethod(
    "NGRAM",
    tree=True,
    params=(
        MethodParam("speculative_ngram_max_bfs_breadth", (1, 4, 10)),
        MethodParam("speculative_ngram_max_trie_depth", (8, 18)),
    ),
)
_NGRAM_VLLM = EngineMethod(
    "ngram",
    tree=False,
    params=(
        MethodParam("prompt_lookup_min", (1, 2, 3)),
        MethodParam("prompt_lookup_max", (3, 4, 5)),
    ),
)

CATALOGUE: tuple[Method, ...] = (
    Method(
        "eagle3",
        DRAFT_MODEL,
        priced=True,
        tree_numbers=True,
        sglang=EngineMethod("EAGLE3", tree=True),
        vllm=EngineMethod("eagle3", tree=False),
        summary="EAGLE-3 head on the target's hidden states",
    ),
    Method(
        "eagle",
        DRAFT_MODEL,
        priced=True,
        tree_numbers=True,
        sglang=EngineMethod("EAGLE", tree=True),
        vllm=EngineMethod("eagle", tree=False),
        summary="EAGLE-1/2 head",
    ),
    Method(
        "mtp",
        TARGET_LAYERS,
        priced=True,
        tree_numbers=True,
        sglang=EngineMethod("NEXTN", tree=True),
        vllm=EngineMethod("mtp", tree=False),
        summary="the target's own multi-token-prediction layers",
    ),
    Method(
        "draft_model",
        DRAFT_MODEL,
        priced=True,
        tree_numbers=True,
        sglang=EngineMethod("STANDALONE", tree=True),
        vllm=EngineMethod("draft_model", tree=False),
        summary="a small standalone draft model",
    ),
    Method(
        "ngram",
        NO_DRAFT,
        priced=False,
        tree_numbers=False,
        sglang=_NGRAM_SGLANG,
        vllm=_NGRAM_VLLM,
        summary="n-gram lookup in the prompt and the text so far",
    ),
    Method(
        "suffix",
        NO_DRAFT,
        priced=False,
        tree_numbers=False,
        sglang=None,
        vllm=EngineMethod(
            "suffix",
            tree=False,
            params=(MethodParam("suffix_decoding_max_tree_depth", (8, 16, 24)),),
        ),
        summary="suffix-tree decoding (vLLM, with arctic-inference)",
    ),
    Method(
        "dflash",
        DRAFT_MODEL,
        priced=False,
        tree_numbers=False,
        sglang=EngineMethod("DFLASH", tree=False),
        vllm=EngineMethod("dflash", tree=False),
        summary="DFlash block-diffusion drafter",
    ),
)
METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in CATALOGUE)
#: The method every file written before methods existed describes.
DEFAULT_METHOD = "eagle3"


def method(name: str) -> Method:
    """The catalogue entry of ``name`` (specbench's spelling; any case)."""
    wanted = name.strip().lower()
    for entry in CATALOGUE:
        if entry.name == wanted:
            return entry
    raise BadInputError(
        f"unknown speculative method {name!r} (expected one of {', '.join(METHOD_NAMES)})"
    )


def engine_method(name: str, engine: str) -> EngineMethod:
    """``name`` as ``engine`` offers it; one line naming what it offers otherwise."""
    found = method(name).on(engine)
    if found is None:
        offered = [m.name for m in CATALOGUE if m.on(engine) is not None]
        raise BadInputError(
            f"{engine} has no {name} speculative method (it offers {', '.join(offered)})"
        )
    return found


def offered_methods(engine: str | None) -> dict[str, EngineMethod]:
    """Every method ``engine`` offers, by specbench's name (None: no catalogue, EAGLE3
    as the engine runs it)."""
    found = {m.name: m.on(engine) for m in CATALOGUE} if engine is not None else {}
    offered = {name: entry for name, entry in found.items() if entry is not None}
    return offered or {DEFAULT_METHOD: EngineMethod(DEFAULT_METHOD, tree=True)}


def method_of_engine_name(engine_name: str, engine: str) -> str:
    """specbench's name of the method ``engine`` calls ``engine_name`` (an SGLang
    algorithm, a vLLM method; any case); BadInputError when no method has that name."""
    for entry in CATALOGUE:
        offered = entry.on(engine)
        if offered is not None and offered.name.lower() == engine_name.strip().lower():
            return entry.name
    raise BadInputError(f"{engine} speculative method {engine_name!r} is not one specbench knows")


def parse_methods(text: str) -> tuple[str, ...]:
    """``"eagle3,ngram"`` -> ("eagle3", "ngram"): known names, in order, once each."""
    names: list[str] = []
    for part in text.split(","):
        if not part.strip():
            continue
        name = method(part).name
        if name not in names:
            names.append(name)
    if not names:
        raise BadInputError("--method names no method (expected e.g. eagle3,ngram)")
    return tuple(names)


__all__ = [
    "CATALOGUE",
    "DEFAULT_METHOD",
    "DRAFT_KINDS",
    "DRAFT_MODEL",
    "METHOD_NAMES",
    "NO_DRAFT",
    "TARGET_LAYERS",
    "EngineMethod",
    "Method",
    "MethodParam",
    "engine_method",
    "method",
    "method_of_engine_name",
    "offered_methods",
    "parse_methods",
]
