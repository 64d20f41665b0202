"""Stacked rnn | lstm | gru over torch's fused modules: the one recurrence every task uses.

`Recurrent` runs whole sequences (with lengths given: packed, or on CPU one dense call per
distinct length when there are few; padding never reaches the backward direction), steps
one token at a time with carried state (`step`), and hands out a low-overhead inference
`stepper()` over the same weights for generation and decoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtool.backbone.cells import Stepper

# (h,) for rnn/gru, (h, c) for lstm; each (layers * directions, B, H)
State = tuple[torch.Tensor, ...]

_MODULES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Recurrent(nn.Module):
    """Stacked recurrent layers over inputs of size `input_size`; batch-first."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = False,
        dropout: float = 0.0,
        forget_bias: float = 0.0,
        weight_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.cell, self.hidden_size, self.layers = cell, hidden_size, layers
        self.bidirectional = bidirectional
        self.weight_dropout = weight_dropout
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.rnn = _MODULES[cell](
            input_size,
            hidden_size,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
            **kwargs,
        )
        if cell == "lstm" and forget_bias:
            # Optional forget-gate bias (Jozefowicz et al. 2015). Off by default: measured on
            # tiny-shakespeare, torch's own init learned faster early on.
            for name, p in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    with torch.no_grad():
                        p[hidden_size : 2 * hidden_size].fill_(forget_bias)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def initial_state(self, batch: int, device: torch.device | None = None) -> State:
        shape = (self.layers * self.num_directions, batch, self.hidden_size)
        n = 2 if self.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(n))

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: State | None = None,
    ) -> tuple[torch.Tensor, State]:
        """x (B, T, E), lengths (B,) or None -> outputs (B, T, D*H), final state."""
        hx = None if state is None else (state if self.cell == "lstm" else state[0])
        run = self._runner()
        if lengths is None:
            out, hn = run(x, hx)
            return out, (hn if isinstance(hn, tuple) else (hn,))
        lens = lengths.tolist()
        distinct = set(lens)
        if distinct == {x.size(1)}:  # no padding: nothing to pack
            out, hn = run(x, hx)
            return out, (hn if isinstance(hn, tuple) else (hn,))
        # A length-bucketed batch has few distinct lengths: one dense call per length is exact
        # and, on CPU, cheaper than packing (forward+backward 0.4-0.7x of the packed time,
        # forward alone 0.9-1.0x at the shipped shapes; benchmarks/packing.py).
        if x.device.type == "cpu" and len(distinct) <= 3 and 0 not in distinct:
            return self._per_length(x, lens, distinct, hx, run)
        return self.forward_packed(x, lengths, state, run)

    def _runner(self):
        """The fused module, or, in training with weight dropout, the fused module over
        hidden-to-hidden weights with one DropConnect mask for the whole batch (AWD-LSTM's
        WeightDrop): it regularises the recurrence without breaking the fused kernel."""
        if not (self.training and self.weight_dropout > 0):
            return self.rnn
        from torch.func import functional_call

        dropped = {
            name: F.dropout(p, self.weight_dropout, training=True)
            for name, p in self.rnn.named_parameters()
            if name.startswith("weight_hh")
        }
        return lambda inp, hx: functional_call(self.rnn, dropped, (inp, hx))

    def forward_packed(
        self, x: torch.Tensor, lengths: torch.Tensor, state: State | None = None, run=None
    ) -> tuple[torch.Tensor, State]:
        """The packed-sequence path (any lengths, any device)."""
        hx = None if state is None else (state if self.cell == "lstm" else state[0])
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hn = (run or self._runner())(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        return out, (hn if isinstance(hn, tuple) else (hn,))

    def _per_length(self, x, lens, distinct, hx, run) -> tuple[torch.Tensor, State]:
        """Rows of each length through one dense call; outputs past a row's length are 0."""
        B, T = x.shape[:2]
        out, final = None, None
        for n in sorted(distinct):
            rows = torch.tensor([i for i, m in enumerate(lens) if m == n], device=x.device)
            h0 = None
            if hx is not None:
                h0 = tuple(h[:, rows] for h in hx) if isinstance(hx, tuple) else hx[:, rows]
            o, hn = run(x[rows, :n], h0)  # (b, n, D*H)
            hn = hn if isinstance(hn, tuple) else (hn,)
            if out is None:
                out = o.new_zeros(B, T, o.size(-1))
                final = tuple(h.new_zeros(h.size(0), B, h.size(2)) for h in hn)
            out[rows, :n] = o
            for f, h in zip(final, hn, strict=True):
                f[:, rows] = h
        return out, final

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One time step through the fused module (trainable): x (B, E) -> (B, H)."""
        out, state = self.forward(x.unsqueeze(1), None, state)
        return out.squeeze(1), state  # (B, D*H)

    def stepper(self, input_table: torch.Tensor | None = None) -> Stepper:
        """A fast inference-only single-step runner over these weights (unidirectional)."""
        if self.bidirectional:
            raise ValueError("step mode needs a unidirectional recurrent stack")
        return Stepper.from_module(self.rnn, self.cell, input_table)
