"""The decoder of encoder-decoder models: target embedding, a bridge from the encoder's final
state, attention (none | additive | dot), optional input feeding, teacher forcing, and one
`step()` that training, greedy search and beam search all go through.

Training with teacher forcing 1.0 and no input feeding runs the whole target at once through
the fused module and attends for every position in one batched call. With a lower ratio (the
model's own previous prediction is fed back with probability 1 - ratio) or with input feeding,
it steps through the same fused module one token at a time. Search steps through the
low-overhead `Stepper` over the same weights.

`attention="none"` is the lessons' plain seq2seq: the encoder's final state starts the decoder
and is fed, as a fixed context vector, to every step and to the output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone.attention import ATTENTIONS, Attention
from seqtool.backbone.cells import Stepper
from seqtool.backbone.embedding import TokenEmbedding
from seqtool.backbone.recurrent import Recurrent, State

SCHEDULES = ("constant", "linear", "inverse-sigmoid")

# A decoder state: the recurrent state ("rnn"), the encoder's outputs ("enc", (N, S, K)), their
# mask and projected keys, the encoder summary (N, K) and the last attentional vector ("feed").
DecoderState = dict[str, Any]


def teacher_forcing_ratio(final: float, schedule: str, step: int, total: int) -> float:
    """The ratio at `step` of `total`: constant, or decaying from 1.0 to `final` linearly or
    along Bengio et al.'s (2015) inverse sigmoid k / (k + exp(i / k))."""
    if schedule == "constant" or total <= 1:
        return final
    p = min(1.0, step / total)
    if schedule == "linear":
        return 1.0 - (1.0 - final) * p
    # k chosen so the curve crosses its midpoint half way: k * ln(k) = 50 in steps of total / 100
    # (the shape does not depend on the run's length); rescaled to run exactly from 1 to 0.
    k = 12.0
    for _ in range(50):  # Newton on k ln k = 50
        k -= (k * math.log(k) - 50) / (math.log(k) + 1)

    def f(i: float) -> float:
        return k / (k + math.exp(i / k))

    decay = (f(100 * p) - f(100)) / (f(0) - f(100))
    return final + (1.0 - final) * decay


class Decoder(nn.Module):
    """Recurrent decoder over an encoder's outputs (B, S, K) and its summary (B, K)."""

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        encoder_size: int,
        hidden_size: int,
        layers: int,
        cell: str,
        dropout: float = 0.0,
        attention: str = "dot",
        input_feeding: bool = False,
        output_dropout: float = 0.0,
        embedding: TokenEmbedding | None = None,
        embedding_dropout: float = 0.0,
    ) -> None:
        """embedding: the encoder's token embedding to share (source, target and output
        tied); None gives the decoder its own target embedding."""
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}")
        E, K, H = embedding_dim, encoder_size, hidden_size
        self.layers, self.input_feeding = layers, input_feeding
        # A shared embedding is held outside the module tree, so it is saved once (encoder).
        self._tied = (embedding,) if embedding is not None else None
        self.target_embedding = (
            None if embedding is not None else TokenEmbedding(vocab_size, E, 0, embedding_dropout)
        )
        extra_in = K if attention == "none" else (E if input_feeding else 0)
        self.rnn = Recurrent(E + extra_in, H, layers, cell, False, dropout)
        self.bridge = nn.Linear(K, H * layers)
        self.attention = None if attention == "none" else Attention(attention, H, K)
        self.combine = nn.Linear(H + K, E)  # attentional vector h~ = tanh(W [h; context])
        self.dropout = nn.Dropout(output_dropout)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.teacher_forcing = 1.0  # the ratio training uses now (a schedule may change it)

    @property
    def embedding(self) -> TokenEmbedding:
        return self._tied[0] if self._tied is not None else self.target_embedding

    # -- state -------------------------------------------------------------------------------

    def start(self, enc: torch.Tensor, mask: torch.Tensor, summary: torch.Tensor) -> DecoderState:
        """enc (B, S, K) encoder outputs, mask (B, S) True at real tokens, summary (B, K) the
        encoder's final state -> the decoder state before the first target token."""
        B, L = enc.size(0), self.layers
        h0 = torch.tanh(self.bridge(summary)).view(B, L, -1).transpose(0, 1).contiguous()
        init = (h0, torch.zeros_like(h0)) if self.rnn.cell == "lstm" else (h0,)  # (L, B, H)
        keys = None if self.attention is None else self.attention.project_keys(enc)
        feed = enc.new_zeros(B, self.embedding.weight.size(1))
        return {
            "rnn": init,
            "enc": enc,
            "mask": mask,
            "keys": keys,
            "summary": summary,
            "feed": feed,
        }

    @staticmethod
    def reorder(st: DecoderState, index: torch.Tensor) -> DecoderState:
        """Rows `index` of a state: to follow surviving beams or drop finished sentences."""
        out = {
            k: (None if v is None else v.index_select(0, index))
            for k, v in st.items()
            if k != "rnn"
        }
        out["rnn"] = tuple(s.index_select(1, index) for s in st["rnn"])  # (L, N, H)
        return out

    def stepper(self) -> Stepper:
        return self.rnn.stepper()

    # -- one step ----------------------------------------------------------------------------

    def output(self, h: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (..., H), context (..., K) -> attentional vector (..., E), logits (..., V)."""
        att = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        logits = F.linear(self.dropout(att), self.embedding.weight, self.out_bias)
        return att, logits

    def step(
        self, tokens: torch.Tensor, st: DecoderState, run: Any = None
    ) -> tuple[torch.Tensor, DecoderState]:
        """tokens (N,) -> logits (N, V), new state. `run` is a `Stepper.step` in search; by
        default the fused module's trainable `Recurrent.step`."""
        run = run or self.rnn.step
        x = self.embedding(tokens)  # (N, E)
        if self.attention is None:
            x = torch.cat([x, st["summary"]], dim=-1)
        elif self.input_feeding:
            x = torch.cat([x, st["feed"]], dim=-1)
        h, rnn = run(x, st["rnn"])  # (N, H)
        if self.attention is None:
            context = st["summary"]
        else:
            context, _ = self.attention(h, st["enc"], st["mask"], st["keys"])  # (N, K)
        att, logits = self.output(h, context)
        return logits, {**st, "rnn": rnn, "feed": att}

    # -- search ------------------------------------------------------------------------------

    @torch.inference_mode()
    def search(
        self, st: DecoderState, strategy: Any, record: list[torch.Tensor] | None = None
    ) -> Any:
        """Run a decoding strategy (decoding.Greedy, decoding.Beam) from a started state
        through decoding.search, each step over the fast inference Stepper; `record` collects
        every step's log-probs (N, V). Returns the strategy's result."""
        from seqtool import decoding

        device, run = self.out_bias.device, self.stepper().step

        def step(tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
            logits, state = self.step(tokens.to(device), state, run)
            logp = logits.float().log_softmax(-1).cpu()  # (N, V)
            if record is not None:
                record.append(logp)
            return logp, state

        return decoding.decode(step, st, strategy, self.reorder)

    # -- a whole target (training, scoring) ----------------------------------------------------

    def forward(
        self,
        st: DecoderState,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor | None = None,
        teacher_forcing: float = 1.0,
        smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """tgt_in (B, T) = BOS + target -> (logits (B, T, V), loss). With tgt_out (target + EOS,
        0-padded) the loss is returned and, on the fused path, logits are only computed for
        real target positions (the V-wide output layer is most of the cost)."""
        if teacher_forcing >= 1.0 and (self.attention is None or not self.input_feeding):
            return self._fused(st, tgt_in, tgt_out, smoothing, reduction)
        # Step by step; where the coin says so the model's own argmax is fed back.
        logits_all = []
        cur = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, st = self.step(cur, st)  # (B, V)
            logits_all.append(logits)
            if t + 1 < tgt_in.size(1):
                if teacher_forcing >= 1.0:
                    cur = tgt_in[:, t + 1]
                else:
                    own = logits.detach().argmax(-1)
                    force = torch.rand(own.shape, device=own.device) < teacher_forcing
                    cur = torch.where(force, tgt_in[:, t + 1], own)
        logits = torch.stack(logits_all, dim=1)  # (B, T, V)
        if tgt_out is None:
            return logits, None
        loss = F.cross_entropy(
            logits.float().flatten(0, 1),
            tgt_out.flatten(),
            ignore_index=0,
            label_smoothing=smoothing,
            reduction=reduction,
        )
        return logits, loss

    def _fused(self, st, tgt_in, tgt_out, smoothing, reduction):
        """Inputs do not depend on outputs: the whole target through the fused module."""
        x = self.embedding(tgt_in)  # (B, T, E)
        T = x.size(1)
        if self.attention is None:
            context = st["summary"].unsqueeze(1).expand(-1, T, -1)  # (B, T, K)
            x = torch.cat([x, context], dim=-1)
        h, _ = self.rnn(x, None, st["rnn"])  # (B, T, H); padding sits after the target
        if self.attention is not None:
            context, _ = self.attention(h, st["enc"], st["mask"], st["keys"])  # (B, T, K)
        if tgt_out is None:
            return self.output(h, context)[1], None
        real = tgt_out != 0  # (B, T)
        logits = self.output(h[real], context[real])[1]  # (N, V)
        loss = F.cross_entropy(
            logits.float(), tgt_out[real], label_smoothing=smoothing, reduction=reduction
        )
        return None, loss


__all__ = ["SCHEDULES", "Decoder", "DecoderState", "State", "teacher_forcing_ratio"]
