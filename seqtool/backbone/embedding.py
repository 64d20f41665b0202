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
        # N(0, 1), torch's default: a smaller init (std 1/sqrt(dim)) starved the recurrent
        # layers of input and trained markedly slower (measured, 2x256 char LM, 300 steps).
        if padding_idx is not None:
            with torch.no_grad():
                self.embed.weight[padding_idx].zero_()

    @property
    def weight(self) -> torch.Tensor:
        return self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(ids))  # (B, T) -> (B, T, E)


class CharWordEncoder(nn.Module):
    """A word as its characters: char embeddings read by a bidirectional `Recurrent`; the
    word's vector is [last forward state; last backward state] (suffix and prefix view), so
    unseen words still get a representation (Ling et al. 2015; Plank et al. 2016)."""

    def __init__(
        self, num_chars: int, char_dim: int = 32, hidden: int = 64, cell: str = "lstm"
    ) -> None:
        super().__init__()
        from seqtool.backbone.recurrent import Recurrent  # recurrent.py imports this module

        self.embed = TokenEmbedding(num_chars, char_dim, padding_idx=0)
        self.rnn = Recurrent(char_dim, hidden, layers=1, cell=cell, bidirectional=True)

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """chars (U, L) ids of U words, lengths (U,) >= 1 -> (U, 2*hidden)."""
        _, state = self.rnn(self.embed(chars), lengths)  # packed: padding never read
        h = state[0]  # (2, U, hidden): final forward and backward states
        return torch.cat([h[0], h[1]], dim=-1)
