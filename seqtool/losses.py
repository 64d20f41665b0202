"""Training losses beyond plain cross-entropy that the heads share."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def unigram_proposal(counts: np.ndarray) -> torch.Tensor:
    """Sampled-softmax negatives are drawn ~ count^0.75 (every id at least once)."""
    q = torch.as_tensor(counts, dtype=torch.float64).clamp_min(1.0).pow(0.75)
    return (q / q.sum()).float()


def sampled_softmax(
    h: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    proposal: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Mean loss of h (N, H) against targets y (N,) scored against k negatives shared by all
    rows, drawn from `proposal` (V,), with the logQ correction (Jean et al. 2015). A negative
    that is a row's target is masked out of that row."""
    neg = torch.multinomial(proposal, k, replacement=True)  # (K,) shared by all rows
    log_kq = torch.log(proposal * k)  # expected count of each id among the K draws
    true = (h * weight[y]).sum(-1) + bias[y] - log_kq[y]  # (N,)
    sampled = F.linear(h, weight[neg], bias[neg]) - log_kq[neg]  # (N, K)
    sampled = sampled.masked_fill(neg[None, :] == y[:, None], float("-inf"))  # hits
    logits = torch.cat([true[:, None], sampled], 1).float()  # (N, 1 + K); class 0 is true
    return F.cross_entropy(logits, torch.zeros_like(y))
