"""Sampling (temperature, top-k, top-p), greedy choice and beam search over step functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from seqtool.errors import ConfigError


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, not {temperature}")
    if top_k < 0:
        raise ConfigError(f"--top-k must be >= 0, not {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"--top-p must be in (0, 1], not {top_p}")


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, V) -> ids (B,). Temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.size(-1) and top_p >= 1.0:
        # Fast path: sample among the k best directly (no full-vocabulary mask and softmax).
        vals, idx = torch.topk(logits, top_k, dim=-1)  # (B, k)
        pick = torch.multinomial(vals.softmax(-1), 1, generator=generator)  # (B, 1)
        return idx.gather(-1, pick).squeeze(-1)
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# -- search over a step function ----------------------------------------------------------------
#
# A step function takes the last tokens (N,) and a decoder state for N rows and returns
# log-probabilities (N, V) and the new state; `reorder(state, index)` picks rows of a state
# (to follow surviving beams or drop finished sentences). Nothing here knows about models.

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
ReorderFn = Callable[[Any, torch.Tensor], Any]


@dataclass
class Hypothesis:
    ids: list[int]  # without BOS/EOS
    logprob: float  # sum of token log-probabilities (EOS included when it was produced)
    score: float  # logprob / length penalty: what the beam ranks by


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + length) / 6) ** alpha; alpha 0 ranks by raw log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


def greedy(
    step: StepFn,
    state: Any,
    batch: int,
    bos: int,
    eos: int,
    max_len: torch.Tensor,
    alpha: float = 0.0,
    min_steps: int = 0,
) -> list[Hypothesis]:
    """Argmax decoding for a batch; each sentence stops at EOS or its max_len (B,) tokens.
    `min_steps` keeps every row stepping that long (free-running loss needs it)."""
    cur = torch.full((batch,), bos, dtype=torch.long)
    logp_sum = torch.zeros(batch)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = [False] * batch
    limit = max_len.tolist()
    steps = max(max(limit, default=0), min_steps)
    for t in range(steps):
        logp, state = step(cur, state)  # (B, V)
        best, cur = logp.float().max(-1)  # (B,), (B,)
        toks, vals = cur.tolist(), best.tolist()
        for b in range(batch):
            if done[b]:
                continue
            logp_sum[b] += vals[b]
            if toks[b] == eos:
                done[b] = True
            else:
                out[b].append(toks[b])
                done[b] = t + 1 >= limit[b]
        if all(done) and t + 1 >= min_steps:
            break
    hyps = []
    for b in range(batch):
        n = len(out[b]) + (1 if len(out[b]) < limit[b] else 0)  # + EOS when it was produced
        lp = float(logp_sum[b])
        hyps.append(Hypothesis(out[b], lp, lp / length_penalty(n, alpha)))
    return hyps


def beam_search(
    step: StepFn,
    reorder: ReorderFn,
    state: Any,
    batch: int,
    bos: int,
    eos: int,
    max_len: torch.Tensor,
    beam: int = 5,
    alpha: float = 1.0,
    n_best: int = 1,
) -> list[list[Hypothesis]]:
    """Batched beam search with GNMT length penalty; returns the n_best hypotheses per sentence,
    best first. A sentence ends once `beam` hypotheses have finished (so beam 1 is exactly
    greedy) or at its max_len (B,) tokens, where the live beams are finished as they are."""
    if beam < 1 or not 1 <= n_best <= beam:
        raise ConfigError(f"need beam >= 1 and 1 <= n-best <= beam (got {beam}, {n_best})")
    K = beam
    limit = max_len.tolist()
    # Row r of the live state belongs to sentence active[r // K].
    active = list(range(batch))
    state = reorder(state, torch.arange(batch).repeat_interleave(K))
    scores = torch.full((batch, K), float("-inf"))
    scores[:, 0] = 0.0  # all beams start identical: only one may expand at step 1
    history = torch.full((batch * K, 0), bos, dtype=torch.long)  # (N, t)
    cur = torch.full((batch * K,), bos, dtype=torch.long)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    t = 0
    while active:
        t += 1
        logp, state = step(cur, state)  # (N, V)
        V = logp.size(-1)
        cand = (scores.view(-1, 1) + logp.float()).view(len(active), K * V)  # (A, K*V)
        # 2K candidates guarantee K that do not end, even if K of them are EOS.
        vals, idx = cand.topk(min(2 * K, K * V), dim=-1)  # (A, 2K)
        src_beam, tok = idx // V, idx % V
        vals_l, beam_l, tok_l = vals.tolist(), src_beam.tolist(), tok.tolist()
        keep_rows, keep_tok, keep_scores, still = [], [], [], []
        for a, b in enumerate(active):
            rows, toks_b, sc = [], [], []
            for j in range(len(tok_l[a])):
                v = vals_l[a][j]
                if v == float("-inf"):
                    break
                row = a * K + beam_l[a][j]
                if tok_l[a][j] == eos:
                    if j < K:  # an EOS outside the top K would not have survived
                        ids = history[row].tolist()
                        finished[b].append(Hypothesis(ids, v, v / length_penalty(t, alpha)))
                    continue
                if len(rows) < K:
                    rows.append(row)
                    toks_b.append(tok_l[a][j])
                    sc.append(v)
            if len(finished[b]) >= K:
                continue
            if t >= limit[b] or not rows:
                for row, tk, v in zip(rows, toks_b, sc, strict=True):
                    ids = history[row].tolist() + [tk]
                    finished[b].append(Hypothesis(ids, v, v / length_penalty(t, alpha)))
                continue
            while len(rows) < K:  # pad with dead beams (score -inf) to keep K rows per sentence
                rows.append(rows[0])
                toks_b.append(toks_b[0])
                sc.append(float("-inf"))
            still.append(b)
            keep_rows += rows
            keep_tok += toks_b
            keep_scores.append(sc)
        if not still:
            break
        index = torch.tensor(keep_rows)
        history = torch.cat([history[index], torch.tensor(keep_tok).unsqueeze(1)], dim=1)
        cur = torch.tensor(keep_tok)
        scores = torch.tensor(keep_scores)  # (A', K)
        state = reorder(state, index)
        active = still
    return [sorted(f, key=lambda h: -h.score)[:n_best] for f in finished]
