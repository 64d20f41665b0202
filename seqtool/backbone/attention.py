"""Attention over encoder outputs: additive (Bahdanau) and dot (Luong's bilinear "general").

Both take queries for one step (B, Q) or for a whole target sequence at once (B, T, Q), so
the teacher-forced decoder attends for every position in one batched call. Keys that are
padding get zero weight through the mask.
"""

from __future__ import annotations

import torch
from torch import nn

ATTENTIONS = ("none", "additive", "dot")


class Attention(nn.Module):
    """score(q, k): additive v·tanh(W_q q + W_k k) or dot q·(W k); softmax over source keys."""

    def __init__(self, kind: str, query_size: int, key_size: int, attn_size: int = 0) -> None:
        super().__init__()
        if kind not in ("additive", "dot"):
            raise ValueError(f"attention must be additive or dot, not {kind!r}")
        self.kind = kind
        if kind == "additive":
            attn_size = attn_size or query_size
            self.key_proj = nn.Linear(key_size, attn_size, bias=False)
            self.query_proj = nn.Linear(query_size, attn_size, bias=True)
            self.v = nn.Linear(attn_size, 1, bias=False)
        else:
            # Keys are mapped into query space once per sentence, so each step is one bmm.
            self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys (B, S, K) -> (B, S, A): computed once per sentence, reused every step."""
        return self.key_proj(keys)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        mask: torch.Tensor,
        proj_keys: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q) or (B, T, Q); keys (B, S, K); mask (B, S) True at real tokens.
        Returns context (B, [T,] K) and weights (B, [T,] S)."""
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (B, T, Q)
        pk = self.project_keys(keys) if proj_keys is None else proj_keys  # (B, S, A)
        if self.kind == "dot":
            scores = torch.bmm(q, pk.transpose(1, 2))  # (B, T, S)
        else:
            qp = self.query_proj(q)  # (B, T, A)
            scores = self.v(torch.tanh(qp.unsqueeze(2) + pk.unsqueeze(1))).squeeze(-1)  # (B, T, S)
        scores = scores.float().masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = scores.softmax(-1).to(keys.dtype)  # (B, T, S)
        context = torch.bmm(weights, keys)  # (B, T, K)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights
