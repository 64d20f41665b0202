"""A fastText-style bag of hashed token n-grams: a cheap second branch beside a recurrent
backbone (the classifier's --ngrams). It reads every token of a text; no recurrence here."""

from __future__ import annotations

import torch
from torch import nn

_HASH_MOD = 2_147_483_647  # 2**31 - 1 keeps the rolling n-gram hash inside int64


def ngram_ids(
    ids: torch.Tensor, lengths: torch.Tensor, n: int, vocab: int, buckets: int, pad: int
) -> torch.Tensor:
    """Bag ids of every token and n-gram (orders 2..n) of each row: ids (B, T) -> (B, ~n*T).

    A token keeps its id; an n-gram goes to one of `buckets` rows after the vocabulary by a
    rolling hash of its ids. Positions past a row's length get `pad`."""
    B, T = ids.shape
    pos = torch.arange(T, device=ids.device)[None, :]  # (1, T)
    out = [ids.masked_fill(pos >= lengths[:, None], pad)]
    h = ids.long()
    for k in range(2, n + 1):
        if k > T:
            break
        h = (h[:, :-1] * vocab + ids[:, k - 1 :]) % _HASH_MOD  # (B, T-k+1): k-grams from pos
        rows = (h * 1_000_003 + k) % buckets + vocab
        out.append(rows.masked_fill(pos[:, : T - k + 1] + k > lengths[:, None], pad))
    return torch.cat(out, 1)


def ngram_bag(
    vocab: int, buckets: int, dim: int, classes: int
) -> tuple[nn.EmbeddingBag, nn.Linear]:
    """(the bag's table, its linear head). The table has a row per token, one per hash bucket
    and a last one for padding: a zero vector left out of the mean."""
    rows = vocab + buckets + 1
    embed = nn.EmbeddingBag(rows, dim, mode="mean", padding_idx=rows - 1)
    with torch.no_grad():
        bound = 1.0 / dim  # fastText's initialisation
        embed.weight.uniform_(-bound, bound)
        embed.weight[rows - 1].zero_()
    return embed, nn.Linear(dim, classes)  # built in this order: it decides the random init


def bag_logits(
    embed: nn.EmbeddingBag,
    head: nn.Linear,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    n: int,
    vocab: int,
    buckets: int,
) -> torch.Tensor:
    """ids (B, T), lengths (B,) -> the bag's logits (B, C) over the whole text."""
    feats = ngram_ids(ids, lengths, n, vocab, buckets, embed.num_embeddings - 1)  # (B, ~n*T)
    return head(embed(feats))  # (B, C)
