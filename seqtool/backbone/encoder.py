"""The encoder every task is: ids [+ char-aware word features] -> embedding -> recurrent ->
outputs, final state, pooling.

The language model (unidirectional), the classifier (bidirectional, pooled), the tagger
(bidirectional, with char features) and the translator's encoder are this one class with
different settings; what differs between tasks is the head on top.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seqtool.backbone.cells import Stepper
from seqtool.backbone.charword import CharWordEncoder
from seqtool.backbone.embedding import TokenEmbedding
from seqtool.backbone.recurrent import Recurrent, State
from seqtool.config import BackboneConfig

POOLS = ("last", "max", "mean")


class Encoder(nn.Module):
    """Token embedding (+ optional char-aware word vectors) and a stacked `Recurrent`.

    Without char features, embedding dropout applies to the token embeddings; with them,
    to [word embedding; char vector] (the tagger's input)."""

    def __init__(self, cfg: BackboneConfig, chars: tuple[int, int, int] | None = None) -> None:
        """chars: (char vocabulary, char embedding size, char hidden size) to add char-aware
        word features; the char stack uses the same cell as the main one."""
        super().__init__()
        self.cfg = cfg
        dropout = 0.0 if chars else cfg.embedding_dropout
        self.embedding = TokenEmbedding(cfg.vocab_size, cfg.embedding_dim, cfg.padding_idx, dropout)
        self.chars = None
        width = cfg.embedding_dim
        if chars is not None:
            self.chars = CharWordEncoder(*chars, cell=cfg.cell)
            self.input_dropout = nn.Dropout(cfg.embedding_dropout)
            width += self.chars.output_size
        self.rnn = Recurrent(
            width,
            cfg.hidden_size,
            cfg.layers,
            cfg.cell,
            cfg.bidirectional,
            cfg.dropout,
            weight_dropout=cfg.weight_dropout,
        )

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    # -- inputs ------------------------------------------------------------------------------

    def char_vectors(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """chars (U, L) ids of U distinct words -> their vectors (U, C)."""
        assert self.chars is not None, "this encoder has no char features"
        return self.chars(chars, lengths)

    def embed(
        self,
        ids: torch.Tensor,
        char_vectors: torch.Tensor | None = None,
        word_types: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids (B, T) -> the first recurrent layer's inputs (B, T, E [+ C]). With char features,
        word_types (B, T) points into char_vectors (U, C), 1-based (0: padding)."""
        x = self.embedding(ids)  # (B, T, E)
        if self.chars is None:
            return x
        c = torch.cat([char_vectors.new_zeros(1, char_vectors.size(1)), char_vectors])
        return self.input_dropout(torch.cat([x, c[word_types]], dim=-1))  # (B, T, E + C)

    # -- running -----------------------------------------------------------------------------

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: State | None = None,
        char_vectors: torch.Tensor | None = None,
        word_types: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> outputs (B, T, D*H) (zero past each length), final state."""
        return self.rnn(self.embed(ids, char_vectors, word_types), lengths, state)

    def summary(self, state: State) -> torch.Tensor:
        """The top layer's final state, both directions side by side: (B, D*H)."""
        h = state[0]  # (layers * D, B, H)
        D = self.rnn.num_directions
        return torch.cat(list(h[-D:]), dim=-1)

    def pool(
        self, out: torch.Tensor, state: State, lengths: torch.Tensor, how: str = "last"
    ) -> torch.Tensor:
        """One vector per sequence (B, D*H): the final states (last), or the max or mean of the
        outputs over the real tokens only."""
        if how == "last":
            return self.summary(state)
        mask = torch.arange(out.size(1), device=out.device)[None, :] < lengths[:, None]  # (B, T)
        if how == "max":
            return out.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)
        return (out * mask[:, :, None]).sum(1) / lengths[:, None].to(out.dtype)

    @torch.inference_mode()
    def prime(self, ids: list[int]) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
        """Generation: run a prompt's tokens but the last through the fused stack once, then
        continue one token at a time. Returns (advance, last token (1,)); advance(ids (1,)) ->
        top-layer output (1, H) through the fast `Stepper`, state carried in place."""
        x = torch.tensor([ids])  # (1, T)
        state = self(x[:, :-1])[1] if len(ids) > 1 else None
        stepper = self.stepper()
        state = tuple(s.clone() for s in state) if state is not None else stepper.initial_state(1)
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if len(state) > 1 else None
        return (lambda cur: stepper.advance(cur, hs, cs)), x[:, -1]

    def stepper(self) -> Stepper:
        """Inference stepper taking token ids; layer 0's input projection is a lookup table."""
        l0 = self.rnn.rnn
        with torch.no_grad():
            table = self.embedding.weight @ l0.weight_ih_l0.t() + l0.bias_ih_l0  # (V, G*H)
        return self.rnn.stepper(input_table=table)


Backbone = Encoder  # the name earlier releases and scripts use
