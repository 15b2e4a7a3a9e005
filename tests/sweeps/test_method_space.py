"""--method: the search space as the union of each method's own configurations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from specbench.spec_methods import offered_methods
from specbench.sweeps.space import chain_space, method_space, parse_space


def test_each_method_brings_its_own_shape_and_parameters() -> None:
    chains = chain_space(parse_space("num_steps=1..4"), "vllm")
    space = method_space(chains, ("eagle3", "draft_model", "ngram"), offered_methods("vllm"))
    by_method: dict[str, int] = {}
    for config in space.configs:
        by_method[config.method] = by_method.get(config.method, 0) + 1
    # 4 chains each; n-gram's 3 x 3 window choices on every chain.
    assert by_method == {"eagle3": 4, "draft_model": 4, "ngram": 36}
    assert space.describe().endswith("method=eagle3|draft_model|ngram")
    trees = method_space(parse_space("num_steps=3,topk=1|4"), ("mtp", "ngram"),
                         offered_methods("sglang"))  # fmt: skip
    assert any(c.method == "mtp" and c.topk == 4 for c in trees.configs)
    assert all(c.topk == 1 for c in trees.configs if c.method == "ngram")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "minimax-m2.7", "--method", "ngram", "--strategy", "grid"],
         "--method ngram: the minimax-m2.7 preset does not list it"),
        (["--target", "tiny-llama", "--method", "ngram", "--strategy", "grid"],
         "--method ngram: ngram is not simulated"),
        (["--target", "tiny-llama", "--method", "eagle3,ngram"],
         "needs --strategy grid or fixed"),
    ],
)  # fmt: skip
def test_a_method_the_sweep_cannot_search_is_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "specbench", "sweep", "--backend", "sim",
         "--out", str(tmp_path / "run"), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
