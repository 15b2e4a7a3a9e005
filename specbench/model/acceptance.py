"""Monte-Carlo of EAGLE-2/3 dynamic-tree drafting and greedy tree verification.

Why a simulation and not a closed form: with ``topk > 1`` the tokens that get verified
depend on a competition between branches (frontier selection by cumulative draft
log-prob, then a global rerank under the ``num_draft_tokens`` budget), and the Leviathan
chain formula says nothing about that. So we run the real selection algorithm over
synthetic next-token distributions.

Synthetic world, per tree node:
  * the draft's ranked next-token probabilities are geometric, ``q_j = c (1 - c)^(j-1)``,
    where the node's confidence ``c = sigmoid(mu + sigma z)``, ``z ~ N(0, 1)`` (per-domain
    sharpness: code/math are sharper than chat);
  * the target's greedy token is the draft's rank-``j`` candidate with probability
    ``a_d q_j`` (a calibrated-but-imperfect draft; ``a_d = agreement * depth_decay^d``
    models the drift of a draft that feeds on its own features), otherwise a token the
    draft did not rank in its top 8.

Temperature (speculative sampling instead of greedy verification, Leviathan et al. 2023):
the target no longer keeps its argmax but samples, so the token it takes is less often
the draft's top candidate. We model that as a flatter rank distribution at each node,
``c_T = c ** (1 + temperature_loss * T)``: at T = 0 this is exactly the greedy model, and
acceptance falls smoothly as T grows (EAGLE-3 paper, arXiv 2503.01840, T = 1 tables:
acceptance lengths below the T = 0 ones on every dataset).

Every random number of a node is a hash of (seed, domain, sample, path of draft ranks), so
the same node has the same randomness whatever the tree shape: configurations are
compared with common random numbers, and tau is exactly monotone in num_draft_tokens.
One simulation at the deepest tree (8 steps) per (domain, topk) serves every num_steps
(frontier selection at step i never looks ahead) and every num_draft_tokens (the rerank
keeps a prefix of one global ranking).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

#: Deepest tree simulated (the search space of spec_config).
MAX_STEPS = 8
#: Widest branching simulated. The sweep searches topk 1..8, but published drafts run wider
#: trees (e.g. topk 10 in the EAGLE-3 paper's SGLang settings); SGLang itself accepts any
#: topk with num_draft_tokens - 1 <= num_steps * topk.
MAX_TOPK = 16
#: Base of the path encoding (ranks 1..16, 0 unused) -> 17**8 < 2**33 fits in 64 bits.
_PATH_BASE = MAX_TOPK + 1

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_NODE_MULT = _U64(0xD6E8FEB86659FD93)


@dataclass(frozen=True)
class DomainAcceptance:
    """How predictable one domain's text is for the draft (see module docstring)."""

    confidence_mu: float
    confidence_sigma: float
    agreement: float
    depth_decay: float = 1.0
    #: How fast acceptance falls with sampling temperature (see module docstring).
    temperature_loss: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 < self.agreement <= 1.0:
            raise ValueError(f"agreement must be in (0, 1], got {self.agreement}")
        if self.confidence_sigma < 0:
            raise ValueError(f"confidence_sigma must be >= 0, got {self.confidence_sigma}")
        if not 0.0 < self.depth_decay <= 1.0:
            raise ValueError(f"depth_decay must be in (0, 1], got {self.depth_decay}")
        if self.temperature_loss < 0:
            raise ValueError(f"temperature_loss must be >= 0, got {self.temperature_loss}")

    def chain_acceptance(self, positions: int) -> np.ndarray:
        """P(the first d drafts of a chain are all accepted), d = 1..positions, at T = 0.

        In the synthetic world a chain node accepts the draft's top-1 with probability
        ``agreement * depth_decay**(d-1) * E[c]`` independently of the other nodes, so the
        product is exact (the Monte-Carlo agrees up to sampling noise).
        """
        mean_c = mean_confidence(self.confidence_mu, self.confidence_sigma)
        per = np.array(
            [min(1.0, self.agreement * self.depth_decay**d * mean_c) for d in range(positions)]
        )
        out: np.ndarray = np.cumprod(per)
        return out


def mean_confidence(mu: float, sigma: float, temperature: float = 0.0, loss: float = 0.0) -> float:
    """E[c] for c = sigmoid(mu + sigma z), z ~ N(0, 1), flattened by temperature."""
    z = ndtri((np.arange(256) + 0.5) / 256.0)
    c = 1.0 / (1.0 + np.exp(-(mu + sigma * z)))
    return float(np.mean(c ** (1.0 + loss * temperature)))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> _U64(30))) * _M1
        x = (x ^ (x >> _U64(27))) * _M2
        out: np.ndarray = x ^ (x >> _U64(31))
        return out


def _uniform(h: np.ndarray) -> np.ndarray:
    """Open-interval (0, 1) doubles from 64-bit hashes."""
    out: np.ndarray = ((h >> _U64(11)).astype(np.float64) + 0.5) * (1.0 / 2.0**53)
    return out


def _string_salt(text: str) -> int:
    # Stable across processes (unlike hash()): FNV-1a.
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def simulate_need(
    params: DomainAcceptance,
    topk: int,
    samples: int,
    seed: int,
    domain: str,
    temperature: float = 0.0,
) -> np.ndarray:
    """Smallest num_draft_tokens that verifies each depth, per sample and num_steps.

    Returns int32 ``need[sample, s - 1, d - 1]`` for num_steps ``s`` and depth ``d``
    (1..MAX_STEPS): the node budget at which the target's greedy path is kept down to
    depth ``d``; a huge value when that depth is not in the tree at all. Then
    ``tau(s, ndt) = 1 + count_d(need[:, s-1, d-1] <= ndt)``.
    """
    if topk < 1 or topk > MAX_TOPK:
        raise ValueError(f"topk must be in 1..{MAX_TOPK}, got {topk}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    flatten = 1.0 + params.temperature_loss * temperature
    n = samples
    salt = _U64(_string_salt(f"{seed}/{domain}"))
    sample_key = _mix(np.arange(n, dtype=np.uint64) ^ salt)[:, None]

    # Frontier state: path ids, cumulative draft log-probs, on the target's greedy path.
    f_id = np.zeros((n, 1), dtype=np.uint64)
    f_score = np.zeros((n, 1))
    f_on = np.ones((n, 1), dtype=bool)
    ranks = np.arange(1, topk + 1, dtype=np.float64)

    level_scores: list[np.ndarray] = []  # per depth, scores of every pool node there
    path_score = np.full((n, MAX_STEPS), np.inf)  # inf = path node not in the pool
    big = np.int32(10_000)

    for depth in range(MAX_STEPS):  # parents at `depth`, children at depth + 1
        with np.errstate(over="ignore"):
            h = _mix(sample_key ^ (f_id * _NODE_MULT))
        u_conf = _uniform(h)
        u_tgt = _uniform(_mix(h))
        c = 1.0 / (1.0 + np.exp(-(params.confidence_mu + params.confidence_sigma * ndtri(u_conf))))
        c = np.clip(c if flatten == 1.0 else c**flatten, 1e-6, 1.0 - 1e-9)
        log_c = np.log(c)
        log_1mc = np.log1p(-c)
        # Target rank: P(rank = j) = a q_j; smallest j with u < a (1 - (1-c)^j).
        a = params.agreement * params.depth_decay**depth
        ratio = np.clip(1.0 - u_tgt / a, 0.0, 1.0)
        with np.errstate(divide="ignore"):
            j_float = np.ceil(np.log(ratio) / log_1mc)
        tgt_rank = np.where(ratio > 0.0, np.maximum(j_float, 1.0), np.inf)  # inf: unranked

        child_score = f_score[:, :, None] + log_c[:, :, None] + (ranks - 1.0) * log_1mc[:, :, None]
        child_on = f_on[:, :, None] & (tgt_rank[:, :, None] == ranks)
        child_id = f_id[:, :, None] * _U64(_PATH_BASE) + ranks.astype(np.uint64)
        m = child_score.shape[1] * topk
        child_score = child_score.reshape(n, m)
        child_on = child_on.reshape(n, m)
        child_id = child_id.reshape(n, m)

        level_scores.append(child_score)
        on_any = child_on.any(axis=1)
        on_idx = child_on.argmax(axis=1)
        path_score[:, depth] = np.where(on_any, child_score[np.arange(n), on_idx], np.inf)

        if m > topk:  # frontier: the topk best children by cumulative log-prob
            keep = np.argpartition(child_score, m - topk, axis=1)[:, m - topk :]
            f_score = np.take_along_axis(child_score, keep, axis=1)
            f_on = np.take_along_axis(child_on, keep, axis=1)
            f_id = np.take_along_axis(child_id, keep, axis=1)
        else:
            f_score, f_on, f_id = child_score, child_on, child_id

    # count[:, L, d]: nodes at depth L+1 scoring above the path node at depth d+1.
    count = np.empty((n, MAX_STEPS, MAX_STEPS), dtype=np.int32)
    for level, scores in enumerate(level_scores):
        # Reduce over the last (contiguous) axis: ~3x faster than over the middle one.
        count[:, level, :] = (path_score[:, :, None] < scores[:, None, :]).sum(axis=2)
    rank = np.cumsum(count, axis=1)  # rank[:, s-1, d]: pool restricted to depth <= s
    in_pool = np.isfinite(path_score)[:, None, :]
    depth_ok = (np.arange(MAX_STEPS)[None, :] <= np.arange(MAX_STEPS)[:, None])[None, :, :]
    need = np.where(in_pool & depth_ok, rank + 2, big).astype(np.int32)
    # A node is verified only with its ancestors: enforce it (it holds already, as a
    # child scores strictly below its parent, but the guarantee should not rest on floats).
    out: np.ndarray = np.maximum.accumulate(need, axis=2)
    return out


def tau_from_need(need: np.ndarray, num_steps: int, num_draft_tokens: int) -> np.ndarray:
    """Accepted tokens per verify step (bonus included) for each simulated sample."""
    accepted = (need[:, num_steps - 1, :] <= num_draft_tokens).sum(axis=1)
    out: np.ndarray = 1 + accepted.astype(np.int64)
    return out


def leviathan_expected_tokens(alpha: float, gamma: int) -> float:
    """E[tokens per step] for a chain of ``gamma`` drafts accepted i.i.d. with ``alpha``."""
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def mix_weights(domains: Mapping[str, float] | None, names: tuple[str, ...]) -> dict[str, float]:
    """Normalised domain weights; equal when none are given."""
    if not domains:
        return {d: 1.0 / len(names) for d in names}
    total = sum(domains.values())
    return {d: domains.get(d, 0.0) / total for d in names}
