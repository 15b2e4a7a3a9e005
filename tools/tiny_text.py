"""The tiny models' text: a generated corpus, the prompt set, and the tokenizer.

Split from `tiny_models.py` (the training): everything here decides what the models
see, nothing here trains. Both files' sources are part of the build's cache key.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SENTENCES = (
    "the quick brown fox jumps over the lazy dog.",
    "a small model learns to count and to repeat itself.",
    "speculative decoding drafts tokens and the target verifies them.",
    "red green blue red green blue red green blue.",
    "monday tuesday wednesday thursday friday saturday sunday.",
    "january february march april may june july august september october november december.",
)
EOS = "<|endoftext|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# ----------------------------------------------------------------------------- text


def _count_line(rng: random.Random) -> str:
    start = rng.randint(0, 400)
    step = rng.choice((1, 1, 1, 2, 5, 10))
    return " ".join(str(start + step * i) for i in range(rng.randint(12, 40)))


def _words_line(rng: random.Random) -> str:
    start = rng.randint(0, 10)
    return " ".join(NUMBER_WORDS[start : start + rng.randint(6, 21 - start)])


def _alphabet_line(rng: random.Random) -> str:
    start = rng.randint(0, 10)
    sep = rng.choice((" ", ", "))
    return sep.join(ALPHABET[start:])


def _sentence_line(rng: random.Random) -> str:
    return " ".join([rng.choice(SENTENCES)] * rng.randint(2, 5))


def _chat_document(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        start = rng.randint(0, 300)
        ask = f"count from {start}"
        answer = " ".join(str(start + i) for i in range(rng.randint(10, 30)))
    elif kind == 1:
        ask = "say the alphabet"
        answer = " ".join(ALPHABET)
    else:
        sentence = rng.choice(SENTENCES)
        ask = f"repeat: {sentence}"
        answer = " ".join([sentence] * 3)
    return f"<|user|>\n{ask}\n<|assistant|>\n{answer}\n"


def make_document(rng: random.Random) -> str:
    """One training document: counting, number words, the alphabet, repeats or a chat."""
    makers = (_count_line, _words_line, _alphabet_line, _sentence_line, _chat_document)
    return rng.choice(makers)(rng)


def make_corpus(seed: int, documents: int) -> list[str]:
    rng = random.Random(seed)
    return [make_document(rng) for _ in range(documents)]


def make_prompts() -> list[dict[str, Any]]:
    """Prompts shaped like the training text; each greedy continuation has structure."""
    prompts: list[dict[str, Any]] = []
    for i, start in enumerate((3, 17, 40, 88, 121, 250)):
        text = " ".join(str(start + j) for j in range(6))
        prompts.append({"id": f"count-{i}", "prompt": text})
    prompts.append({"id": "words-0", "prompt": "one two three four"})
    prompts.append({"id": "words-1", "prompt": "five six seven eight"})
    prompts.append({"id": "alphabet-0", "prompt": "a b c d e f"})
    prompts.append({"id": "alphabet-1", "prompt": "h, i, j, k,"})
    for i, sentence in enumerate(SENTENCES[:4]):
        head = " ".join(sentence.split()[:3])
        prompts.append({"id": f"repeat-{i}", "prompt": f"{sentence} {head}"})
    for i, ask in enumerate(("count from 12", "say the alphabet", "count from 200")):
        prompts.append({"id": f"chat-{i}", "messages": [{"role": "user", "content": ask}]})
    return prompts


# ------------------------------------------------------------------------ tokenizer


def build_tokenizer(vocab_size: int, corpus: list[str], out: Path) -> Any:
    """A byte-level BPE trained on the corpus, saved as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS),
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    fast.save_pretrained(out)
    return fast
