"""Token embeddings (with dropout) for the shared backbone."""

from __future__ import annotations

import torch
from torch import nn


class TokenEmbedding(nn.Module):
    def __init__(
        self, vocab_size: int, dim: int, padding_idx: int | None = 0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.embed.weight, std=dim**-0.5)
        if padding_idx is not None:
            with torch.no_grad():
                self.embed.weight[padding_idx].zero_()

    @property
    def weight(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(ids))  # (B, T) -> (B, T, E)
