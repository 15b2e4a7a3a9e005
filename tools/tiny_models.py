"""Build tiny, deterministic models that a real vLLM server can serve on a CPU.

No model hub is reachable from CI, so an end-to-end test against a real engine needs
models made locally: a byte-level BPE tokenizer, a 4-layer Llama target trained on
generated repetitive text (so greedy output has structure and speculation has something
to accept), a 1-layer Llama draft for vLLM's `draft_model` method, and an EAGLE-3 head
for vLLM's `eagle3` method distilled on the target's own greedy continuations.

Run with the vLLM virtualenv's python (it has torch, transformers, tokenizers):

    .vllm-venv/bin/python tools/tiny_models.py [--cache-dir DIR] [--print-dir]

The build is a pure function of this file's source and its parameters: fixed seeds, fixed
step counts (never wall-clock budgets), single-threaded-deterministic CPU kernels. The
result lands in `<cache-dir>/<content-hash>/` (`target/`, `draft/`, `eagle3/`,
`build.json`), written to a temporary folder and renamed into place, and is reused when
present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as nnf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_text import EOS, build_tokenizer, make_corpus, make_prompts

#: The build's code: a change to either file is a new build.
SOURCES = (Path(__file__), Path(__file__).with_name("tiny_text.py"))


@dataclass(frozen=True)
class BuildParams:
    """Everything that decides the models' weights; part of the cache key."""

    seed: int = 1234
    vocab_size: int = 2048
    corpus_documents: int = 6000
    hidden_size: int = 256
    intermediate_size: int = 512
    target_layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    draft_layers: int = 1
    seq_len: int = 64
    batch_size: int = 16
    target_steps: int = 120
    target_lr: float = 3e-3
    draft_steps: int = 50
    draft_lr: float = 3e-3
    eagle_sequences: int = 48
    eagle_new_tokens: int = 48
    eagle_batch_size: int = 8
    eagle_steps: int = 100
    eagle_lr: float = 2e-3
    #: Draft steps the head is unrolled over in training: acceptance then decays
    #: smoothly with the position up to k = eagle_depth (a head trained over 3 steps
    #: collapses at position 4).
    eagle_depth: int = 5
    eagle_aux_layers: tuple[int, ...] = (1, 2, 3)
    threads: int = 1


def encode_stream(tokenizer: Any, corpus: list[str]) -> torch.Tensor:
    eos = tokenizer.convert_tokens_to_ids(EOS)
    ids: list[int] = []
    for doc in corpus:
        ids.extend(tokenizer.encode(doc, add_special_tokens=False))
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def sample_batch(stream: torch.Tensor, params: BuildParams, gen: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(stream) - params.seq_len - 1, (params.batch_size,), generator=gen)
    return torch.stack([stream[s : s + params.seq_len + 1] for s in starts.tolist()])


def llama_config(params: BuildParams, layers: int, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    eos = tokenizer.convert_tokens_to_ids(EOS)
    return LlamaConfig(
        vocab_size=params.vocab_size,
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=params.heads,
        num_key_value_heads=params.kv_heads,
        head_dim=params.head_dim,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        torch_dtype="float32",
    )


def lr_at(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over 10% of the steps, then cosine decay to 10% of the peak."""
    warm = max(1, steps // 10)
    if step < warm:
        return peak * (step + 1) / warm
    frac = (step - warm) / max(1, steps - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def train_lm(
    model: nn.Module,
    stream: torch.Tensor,
    params: BuildParams,
    steps: int,
    peak_lr: float,
    teacher: nn.Module | None,
    label: str,
) -> float:
    """Next-token training; with a teacher, the labels are the teacher's greedy choices."""
    gen = torch.Generator().manual_seed(params.seed + len(label))
    opt = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.0)
    model.train()
    loss_value = float("nan")
    for step in range(steps):
        batch = sample_batch(stream, params, gen)
        inputs = batch[:, :-1]
        if teacher is None:
            labels = batch[:, 1:]
        else:
            with torch.no_grad():
                labels = teacher(input_ids=inputs).logits.argmax(-1)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr)
        logits = model(input_ids=inputs).logits
        loss = nnf.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = float(loss.detach())
        if step % 50 == 0 or step == steps - 1:
            print(f"  {label} step {step:4d} loss {loss_value:.3f}", file=sys.stderr, flush=True)
    model.eval()
    return loss_value


# --------------------------------------------------------------------------- eagle3


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Eagle3Head(nn.Module):
    """The EAGLE-3 draft head exactly as vLLM's llama_eagle3.py runs it.

    vLLM (vllm/model_executor/models/llama_eagle3.py) feeds the first draft step
    `fc(concat(aux hidden states))`, later steps the previous step's pre-norm output; its
    single decoder layer normalises the token embedding and that hidden state separately
    and concatenates them (2 * hidden into q/k/v). Parameter names match the checkpoint
    names vLLM loads (`midlayer.*`, `fc`, `norm`, `lm_head`); the embedding is the target's.
    """

    def __init__(self, params: BuildParams, rope_theta: float, eps: float) -> None:
        super().__init__()
        h, d = params.hidden_size, params.head_dim
        self.params = params
        self.eps = eps
        self.fc = nn.Linear(h * len(params.eagle_aux_layers), h, bias=False)
        self.norm = nn.Parameter(torch.ones(h))
        self.lm_head = nn.Linear(h, params.vocab_size, bias=False)
        self.input_layernorm = nn.Parameter(torch.ones(h))
        self.hidden_norm = nn.Parameter(torch.ones(h))
        self.post_attention_layernorm = nn.Parameter(torch.ones(h))
        self.q_proj = nn.Linear(2 * h, params.heads * d, bias=False)
        self.k_proj = nn.Linear(2 * h, params.kv_heads * d, bias=False)
        self.v_proj = nn.Linear(2 * h, params.kv_heads * d, bias=False)
        self.o_proj = nn.Linear(params.heads * d, h, bias=False)
        self.gate_proj = nn.Linear(h, params.intermediate_size, bias=False)
        self.up_proj = nn.Linear(h, params.intermediate_size, bias=False)
        self.down_proj = nn.Linear(params.intermediate_size, h, bias=False)
        self.register_buffer(
            "inv_freq", 1.0 / (rope_theta ** (torch.arange(0, d, 2).float() / d)), persistent=False
        )

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        freqs = positions[:, None].float() * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return x * emb.cos() + _rotate_half(x) * emb.sin()

    def _qkv(
        self, embeds: torch.Tensor, hidden: torch.Tensor, offset: int
    ) -> tuple[torch.Tensor, ...]:
        p = self.params
        b, n, _ = hidden.shape
        x = torch.cat(
            [
                _rms(embeds, self.input_layernorm, self.eps),
                _rms(hidden, self.hidden_norm, self.eps),
            ],
            dim=-1,
        )
        positions = torch.arange(n) + offset
        q = self._rope(self.q_proj(x).view(b, n, p.heads, p.head_dim).transpose(1, 2), positions)
        k = self._rope(self.k_proj(x).view(b, n, p.kv_heads, p.head_dim).transpose(1, 2), positions)
        v = self.v_proj(x).view(b, n, p.kv_heads, p.head_dim).transpose(1, 2)
        rep = p.heads // p.kv_heads
        return q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)

    def _finish(self, attn: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, _, n, _ = attn.shape
        out = self.o_proj(attn.transpose(1, 2).reshape(b, n, -1))
        residual = out + residual
        x = _rms(residual, self.post_attention_layernorm, self.eps)
        x = self.down_proj(nnf.silu(self.gate_proj(x)) * self.up_proj(x))
        prenorm = x + residual
        return self.lm_head(_rms(prenorm, self.norm, self.eps)), prenorm

    def unrolled(self, aux: torch.Tensor, embeds: list[torch.Tensor]) -> list[torch.Tensor]:
        """Logits of draft steps 1..depth, with the attention vLLM's KV cache gives.

        Step k's query at index i (position i + k - 1) sees step 1's keys at indices <= i
        (the accepted prefix, drafted from the target's hidden states) and the keys of
        steps 2..k at index i only (its own earlier drafts).
        """
        n = aux.shape[1]
        scale = 1.0 / math.sqrt(self.params.head_dim)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        hidden = self.fc(aux)
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        logits_per_step: list[torch.Tensor] = []
        for step, emb in enumerate(embeds):
            q, k, v = self._qkv(emb, hidden, offset=step)
            keys.append(k)
            values.append(v)
            scores = [(q @ keys[0].transpose(-1, -2)).masked_fill(~causal, float("-inf"))]
            scores += [(q * kk).sum(-1, keepdim=True) for kk in keys[1:]]
            weights = torch.cat(scores, dim=-1).mul(scale).softmax(-1)
            attn = weights[..., :n] @ values[0]
            for j, vv in enumerate(values[1:]):
                attn = attn + weights[..., n + j : n + j + 1] * vv
            logits, hidden = self._finish(attn, hidden)
            logits_per_step.append(logits)
        return logits_per_step

    def vllm_state_dict(self) -> dict[str, torch.Tensor]:
        names = {
            "fc.weight": self.fc.weight,
            "norm.weight": self.norm,
            "lm_head.weight": self.lm_head.weight,
            "midlayer.input_layernorm.weight": self.input_layernorm,
            "midlayer.hidden_norm.weight": self.hidden_norm,
            "midlayer.post_attention_layernorm.weight": self.post_attention_layernorm,
        }
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            names[f"midlayer.self_attn.{proj}.weight"] = getattr(self, proj).weight
        for proj in ("gate_proj", "up_proj", "down_proj"):
            names[f"midlayer.mlp.{proj}.weight"] = getattr(self, proj).weight
        return {k: v.detach().contiguous().clone() for k, v in names.items()}


def greedy_continuations(target: Any, stream: torch.Tensor, params: BuildParams) -> torch.Tensor:
    """Prefixes cut from the corpus, continued greedily by the target (its own outputs)."""
    gen = torch.Generator().manual_seed(params.seed + 7)
    prefix_len = 16
    starts = torch.randint(0, len(stream) - prefix_len, (params.eagle_sequences,), generator=gen)
    prefixes = torch.stack([stream[s : s + prefix_len] for s in starts.tolist()])
    with torch.no_grad():
        out = target.generate(
            input_ids=prefixes,
            attention_mask=torch.ones_like(prefixes),
            max_new_tokens=params.eagle_new_tokens,
            min_new_tokens=params.eagle_new_tokens,
            do_sample=False,
        )
    return out[:, : prefix_len + params.eagle_new_tokens]


def train_eagle3(
    target: Any, stream: torch.Tensor, params: BuildParams
) -> tuple[Eagle3Head, float]:
    seqs = greedy_continuations(target, stream, params)
    with torch.no_grad():
        out = target(input_ids=seqs, output_hidden_states=True)
        aux_all = torch.cat([out.hidden_states[i] for i in params.eagle_aux_layers], dim=-1)
        argmax = out.logits.argmax(-1)  # argmax[:, j] is the target's choice for token j + 1
        embed_all = target.get_input_embeddings()(seqs)
    cfg = target.config
    head = Eagle3Head(
        params, rope_theta=float(getattr(cfg, "rope_theta", 10000.0)), eps=cfg.rms_norm_eps
    )
    with torch.no_grad():
        head.lm_head.weight.copy_(target.lm_head.weight)
        head.norm.copy_(target.model.norm.weight)
    depth = params.eagle_depth
    n = seqs.shape[1] - depth
    # Step k (1-based) at index i: token i + k, hidden from index i, predicts argmax[i + k].
    embeds = [embed_all[:, k : k + n] for k in range(1, depth + 1)]
    labels = [argmax[:, k : k + n] for k in range(1, depth + 1)]
    aux = aux_all[:, :n]
    gen = torch.Generator().manual_seed(params.seed + 11)
    # The head decodes through the target's own lm_head, kept frozen: the head learns to
    # land in the target's output space, and the largest matmul needs no weight gradient.
    head.lm_head.weight.requires_grad_(False)
    trainable = [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=params.eagle_lr, weight_decay=0.0)
    weights = [0.8**k for k in range(depth)]
    loss_value = float("nan")
    per_batch = params.eagle_batch_size
    for step in range(params.eagle_steps):
        idx = torch.randint(0, seqs.shape[0], (per_batch,), generator=gen)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, params.eagle_steps, params.eagle_lr)
        step_logits = head.unrolled(aux[idx], [e[idx] for e in embeds])
        loss = sum(
            w * nnf.cross_entropy(lg.reshape(-1, lg.shape[-1]), lb[idx].reshape(-1))
            for w, lg, lb in zip(weights, step_logits, labels, strict=True)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        loss_value = float(loss.detach())  # type: ignore[union-attr]
        if step % 40 == 0 or step == params.eagle_steps - 1:
            with torch.no_grad():
                acc = [
                    float((lg.argmax(-1) == lb[idx]).float().mean())
                    for lg, lb in zip(step_logits, labels, strict=True)
                ]
            accs = " ".join(f"{a:.2f}" for a in acc)
            print(
                f"  eagle3 step {step:4d} loss {loss_value:.3f} acc/step {accs}",
                file=sys.stderr,
                flush=True,
            )
    return head, loss_value


def save_eagle3(head: Eagle3Head, target_cfg: Any, params: BuildParams, out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True)
    cfg = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": params.hidden_size,
        "intermediate_size": params.intermediate_size,
        "num_hidden_layers": 1,
        "num_attention_heads": params.heads,
        "num_key_value_heads": params.kv_heads,
        "head_dim": params.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": target_cfg.max_position_embeddings,
        "rms_norm_eps": target_cfg.rms_norm_eps,
        "rope_theta": float(getattr(target_cfg, "rope_theta", 10000.0)),
        "vocab_size": params.vocab_size,
        "draft_vocab_size": params.vocab_size,
        "target_hidden_size": params.hidden_size,
        "eagle_aux_hidden_state_layer_ids": list(params.eagle_aux_layers),
        "tie_word_embeddings": False,
        "bos_token_id": target_cfg.bos_token_id,
        "eos_token_id": target_cfg.eos_token_id,
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_file(head.vllm_state_dict(), str(out / "model.safetensors"))


# ---------------------------------------------------------------------------- build


def content_hash(params: BuildParams) -> str:
    h = hashlib.sha256()
    for source in SOURCES:
        h.update(source.read_bytes())
    h.update(json.dumps(asdict(params), sort_keys=True).encode())
    return h.hexdigest()[:16]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(params: BuildParams, dest: Path) -> dict[str, Any]:
    """Build everything into `dest` (a fresh folder); return the summary."""
    from transformers import LlamaForCausalLM

    t0 = time.monotonic()
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    corpus = make_corpus(params.seed, params.corpus_documents)
    tokenizer = build_tokenizer(params.vocab_size, corpus, dest / "target")
    stream = encode_stream(tokenizer, corpus)
    timings: dict[str, float] = {"tokenizer": time.monotonic() - t0}

    torch.manual_seed(params.seed + 1)
    target = LlamaForCausalLM(llama_config(params, params.target_layers, tokenizer))
    target_loss = train_lm(
        target, stream, params, params.target_steps, params.target_lr, None, "target"
    )
    target.save_pretrained(dest / "target")
    timings["target"] = time.monotonic() - t0 - sum(timings.values())

    torch.manual_seed(params.seed + 2)
    draft = LlamaForCausalLM(llama_config(params, params.draft_layers, tokenizer))
    with torch.no_grad():
        draft.model.embed_tokens.weight.copy_(target.model.embed_tokens.weight)
        draft.lm_head.weight.copy_(target.lm_head.weight)
    draft_loss = train_lm(
        draft, stream, params, params.draft_steps, params.draft_lr, target, "draft"
    )
    draft.save_pretrained(dest / "draft")
    tokenizer.save_pretrained(dest / "draft")
    timings["draft"] = time.monotonic() - t0 - sum(timings.values())

    torch.manual_seed(params.seed + 3)
    head, eagle_loss = train_eagle3(target, stream, params)
    save_eagle3(head, target.config, params, dest / "eagle3")
    tokenizer.save_pretrained(dest / "eagle3")
    timings["eagle3"] = time.monotonic() - t0 - sum(timings.values())

    return {
        "params": asdict(params),
        "parameters": {
            "target": n_params(target),
            "draft": n_params(draft),
            "eagle3": n_params(head),
        },
        "final_loss": {"target": target_loss, "draft": draft_loss, "eagle3": eagle_loss},
        "corpus_tokens": len(stream),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "torch": torch.__version__,
    }


def ensure_models(params: BuildParams, cache_dir: Path) -> Path:
    """Return the cached build for `params`, building it first when absent."""
    final = cache_dir / content_hash(params)
    if (final / "build.json").is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    try:
        summary = build(params, tmp)
        (tmp / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "build.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_cache = Path.home() / ".cache" / "specbench" / "tiny-models"
    parser.add_argument("--cache-dir", type=Path, default=default_cache)
    parser.add_argument("--print-dir", action="store_true", help="print only the build folder")
    parser.add_argument("--write-prompts", type=Path, help="write the prompt set (JSONL) here")
    args = parser.parse_args(argv)
    if args.write_prompts:
        lines = [json.dumps(p, sort_keys=True) for p in make_prompts()]
        args.write_prompts.write_text("\n".join(lines) + "\n")
        return 0
    params = BuildParams()
    t0 = time.monotonic()
    folder = ensure_models(params, args.cache_dir)
    if args.print_dir:
        print(folder)
        return 0
    summary = json.loads((folder / "build.json").read_text())
    print(f"tiny models: {folder} (ready in {time.monotonic() - t0:.1f}s)")
    print(f"  parameters: {summary['parameters']}")
    print(f"  final loss: {summary['final_loss']}")
    print(f"  build seconds: {summary['seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
