"""Built-in prompt mix, user datasets, and the workload fingerprint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from specbench.errors import BadInputError, FileFormatError
from specbench.harness.prompts import (
    Prompt,
    builtin_prompts,
    estimate_tokens,
    load_dataset,
    prompts_sha256,
    workload_fingerprint,
)


def test_builtin_mix_has_enough_prompts_per_domain_and_unique_ids() -> None:
    prompts = builtin_prompts()
    assert len(prompts) >= 60
    counts = Counter(p.domain for p in prompts)
    assert set(counts) == {"chat", "code", "math"}
    assert all(n >= 20 for n in counts.values()), counts
    ids = [p.id for p in prompts]
    assert len(ids) == len(set(ids))
    texts = [p.text for p in prompts]
    assert len(texts) == len(set(texts))
    lengths = sorted(estimate_tokens(t) for t in texts)
    # varied lengths: short questions and long pasted-context prompts
    assert lengths[0] < 15 and lengths[-1] > 120


def test_builtin_file_is_shipped_as_package_data() -> None:
    import specbench.harness

    path = Path(specbench.harness.__file__).parent / "data" / "prompts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert {"id", "domain", "prompt"} <= set(rows[0])
    assert len(rows) == len(builtin_prompts())


def test_estimate_tokens_is_about_four_chars_per_token() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100


def test_jsonl_dataset_with_prompt_and_text_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"prompt": "hello there", "domain": "code", "id": "a"}\n'
        "\n"
        '{"text": "second one"}\n'
        '{"prompt": "dup id", "id": "a"}\n'
    )
    prompts = load_dataset(path)
    assert prompts == [
        Prompt("a", "code", "hello there"),
        Prompt("p3", "chat", "second one"),
        Prompt("a#2", "chat", "dup id"),
    ]


def test_sharegpt_jsonl_and_json_array(tmp_path: Path) -> None:
    conv = {
        "id": "s1",
        "conversations": [
            {"from": "system", "value": "be nice"},
            {"from": "human", "value": "What is 2+2?"},
            {"from": "gpt", "value": "4"},
            {"from": "human", "value": "and 3+3?"},
        ],
    }
    jsonl = tmp_path / "share.jsonl"
    jsonl.write_text(json.dumps(conv) + "\n")
    # Given as a conversation: OpenAI-style engines get it through the chat API.
    assert load_dataset(jsonl) == [Prompt("s1", "chat", "What is 2+2?", chat=True)]

    array = tmp_path / "share.json"
    array.write_text(
        json.dumps([conv, {"messages": [{"role": "user", "content": "hi"}], "domain": "math"}])
    )
    assert load_dataset(array) == [
        Prompt("s1", "chat", "What is 2+2?", chat=True),
        Prompt("p1", "math", "hi", chat=True),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"prompt": "ok"}\n{"prompt": "broken\n', "line 2 is not valid JSON"),
        ('{"prompt": "ok"}\n{"question": "x"}\n', "line 2: field 'prompt'"),
        ('{"prompt": 3}\n', "line 1: field 'prompt': expected a string"),
        ('{"prompt": "x", "domain": 4}\n', "line 1: field 'domain'"),
        ('{"conversations": [{"from": "gpt", "value": "x"}]}\n', "no human turn"),
        ("[1, 2]", "item 0: expected a JSON object"),
        ('[{"prompt": "a"}, ', "not valid JSON at line 1"),
        ('"just a string"\n', "line 1: expected a JSON object"),
    ],
)
def test_malformed_dataset_names_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(FileFormatError) as info:
        load_dataset(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_empty_or_missing_dataset(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(BadInputError, match="no prompts"):
        load_dataset(empty)
    array = tmp_path / "empty.json"
    array.write_text("[]")
    with pytest.raises(BadInputError, match="no prompts"):
        load_dataset(array)
    with pytest.raises(FileFormatError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")


def test_prompts_sha256_depends_on_order_and_content() -> None:
    a, b = Prompt("1", "chat", "x"), Prompt("2", "code", "y")
    assert prompts_sha256([a, b]) == prompts_sha256([a, b])
    assert prompts_sha256([a, b]) != prompts_sha256([b, a])
    assert prompts_sha256([a]) != prompts_sha256([Prompt("1", "chat", "x ")])
    # no collision by moving text between fields
    assert prompts_sha256([Prompt("1", "ab", "c")]) != prompts_sha256([Prompt("1", "a", "bc")])


def test_workload_fingerprint_from_real_target_preset() -> None:
    from specbench.model import load_target

    target = load_target("minimax-m2.7")
    prompts = builtin_prompts()
    fp = workload_fingerprint(target, prompts, 256)
    assert fp.target_model == target.model_path
    assert fp.draft_model == target.draft_model_path
    assert fp.algorithm == target.algorithm
    assert fp.num_prompts == len(prompts)
    assert fp.max_new_tokens == 256
    assert fp.dataset == "builtin"
    assert fp.prompts_sha256 == prompts_sha256(prompts)
    other = workload_fingerprint(target, prompts[:-1], 256, dataset="x.jsonl")
    assert {d.split(":")[0] for d in fp.differences(other)} == {
        "prompts_sha256",
        "num_prompts",
        "dataset",
    }
