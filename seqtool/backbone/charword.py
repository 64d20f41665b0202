"""Char-aware word features: each word read by a small bidirectional recurrent stack."""

from __future__ import annotations

import torch
from torch import nn

from seqtool.backbone.embedding import TokenEmbedding
from seqtool.backbone.recurrent import Recurrent


class CharWordEncoder(nn.Module):
    """A word as its characters: char embeddings read by a bidirectional `Recurrent`; the
    word's vector is [last forward state; last backward state] (suffix and prefix view), so
    unseen words still get a representation (Ling et al. 2015; Plank et al. 2016)."""

    def __init__(
        self, num_chars: int, char_dim: int = 32, hidden: int = 64, cell: str = "lstm"
    ) -> None:
        super().__init__()
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
