"""What a colour means in the report, the same on every plot and table.

The verdict says a tree pays only when its whole interval lies above 1.0x; a page that
paints 1.02x [0.97-1.07] green and 0.98x [0.95-1.01] red contradicts it. So a speedup
has one of three tones, read from its interval: pays (wholly above 1.0x), loses (wholly
below) or neutral (within noise of no speculation). And a configuration keeps its
colour across plots: the pick is vermillion everywhere, no speculation black, the model
card green, the engine's automatic choice purple, the best tree per load orange; other
series take the remaining colour-blind-safe colours (Okabe-Ito), never those.
"""

from __future__ import annotations

PICK = "#D55E00"
NO_SPECULATION = "#000000"
MODEL_CARD = "#009E73"
AUTOMATIC = "#CC79A7"
BEST_PER_LOAD = "#E69F00"
#: Series with no role (top configurations, topk lines, concurrencies, all-reduce modes).
OTHERS = ("#0072B2", "#56B4E9", "#8C6D31", "#999999", "#F0E442", "#332288")

TONE_PAYS = "pays"
TONE_LOSES = "nopay"
TONE_NEUTRAL = "neutral"

#: How a role shows in a series label, as verdict_views and verdict_section write them.
_ROLE_WORDS: tuple[tuple[str, str], ...] = (
    ("(mixed-load pick)", PICK),
    ("(pick)", PICK),
    ("(recommended)", PICK),
    ("no speculation", NO_SPECULATION),
    ("model card", MODEL_CARD),
    ("automatic choice", AUTOMATIC),
    ("best tree at each load", BEST_PER_LOAD),
)


def tone(low: float, high: float) -> str:
    """The tone of a speedup interval: only a whole interval past 1.0x is coloured."""
    if low > 1.0:
        return TONE_PAYS
    if high < 1.0:
        return TONE_LOSES
    return TONE_NEUTRAL


def other_colour(index: int) -> str:
    return OTHERS[index % len(OTHERS)]


def series_colour(label: str, index: int) -> str:
    """The colour of a series by the role its label names, else the index-th other."""
    lowered = label.lower()
    for words, colour in _ROLE_WORDS:
        if words in lowered:
            return colour
    return other_colour(index)


__all__ = [
    "AUTOMATIC",
    "BEST_PER_LOAD",
    "MODEL_CARD",
    "NO_SPECULATION",
    "OTHERS",
    "PICK",
    "TONE_LOSES",
    "TONE_NEUTRAL",
    "TONE_PAYS",
    "other_colour",
    "series_colour",
    "tone",
]
