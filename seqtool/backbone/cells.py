"""The seed equations of the RNN, LSTM and GRU cells, written out.

These are the lessons' formulas over torch's weight layout (gate order i, f, g, o for the LSTM;
r, z, n for the GRU). Training always uses the fused modules; these functions serve inspection
and the low-overhead inference `Stepper`, and tests hold them to the fused modules within 1e-5.
"""

from __future__ import annotations

import torch
from torch import nn


def rnn_cell(xp: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor):
    """h_t = tanh(W_xh x_t + b_xh + W_hh h_{t-1} + b_hh); xp = W_xh x_t + b_xh. (B, H)."""
    return torch.tanh(torch.addmm(xp + b_hh, h, w_hh.t()))


def lstm_cell(
    xp: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """f, i, o = sigmoid(...); c~ = tanh(...); c = f*c + i*c~; h = o*tanh(c). Returns gates too."""
    gates = torch.addmm(xp + b_hh, h, w_hh.t())  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c, {"input": i, "forget": f, "cell": g, "output": o}


def gru_cell(
    xp: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """r, z = sigmoid(...); h~ = tanh(W_xn x + r*(W_hn h + b_hn)); h = (1-z)*h~ + z*h."""
    hp = torch.addmm(b_hh, h, w_hh.t())  # (B, 3H)
    xr, xz, xn = xp.chunk(3, dim=1)
    hr, hz, hn = hp.chunk(3, dim=1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h = (1 - z) * n + z * h
    return h, {"reset": r, "update": z, "candidate": n}


class Stepper:
    """Runs a unidirectional stack one step at a time with minimal per-step overhead.

    Calling nn.LSTM per step costs far more than the arithmetic of one step (a 2x512 step is
    ~8 MFLOP), so this precomputes transposed weights, fuses biases and, for layer 0, can take
    a (V, G*H) table of projected embeddings so a token id costs one row lookup.
    """

    def __init__(self, cell: str, layers: list[tuple[torch.Tensor, ...]], table: torch.Tensor | None):
        self.cell, self.layers, self.table = cell, layers, table
        self.hidden_size = layers[0][1].size(0)

    @classmethod
    def from_module(cls, rnn: nn.RNNBase, cell: str, table: torch.Tensor | None = None) -> Stepper:
        layers = []
        with torch.no_grad():
            for k in range(rnn.num_layers):
                w_ih = getattr(rnn, f"weight_ih_l{k}").detach()
                w_hh = getattr(rnn, f"weight_hh_l{k}").detach()
                b_ih = getattr(rnn, f"bias_ih_l{k}").detach()
                b_hh = getattr(rnn, f"bias_hh_l{k}").detach()
                if cell == "gru":  # b_hn sits inside r * (...), so biases stay apart
                    layers.append((w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih, b_hh))
                else:
                    layers.append((w_ih.t().contiguous(), w_hh.t().contiguous(), b_ih + b_hh))
            if table is not None:
                table = table.detach().clone()
                if cell != "gru":  # the table already holds b_ih; fold in b_hh too
                    table += getattr(rnn, "bias_hh_l0").detach()
        return cls(cell, layers, table)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        n = 2 if self.cell == "lstm" else 1
        return tuple(
            torch.zeros(len(self.layers), batch, self.hidden_size) for _ in range(n)
        )

    @torch.inference_mode()
    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """x: token ids (B,) when built with a table, else inputs (B, E). Returns (B, H), state."""
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if self.cell == "lstm" else None
        inp = x
        H = self.hidden_size
        for k, w in enumerate(self.layers):
            h = hs[k]
            if self.cell == "gru":
                w_ihT, w_hhT, b_ih, b_hh = w
                xp = self.table[inp] if (k == 0 and self.table is not None) else torch.addmm(b_ih, inp, w_ihT)
                hp = torch.addmm(b_hh, h, w_hhT)
                rz = torch.sigmoid(xp[:, : 2 * H] + hp[:, : 2 * H])
                r, z = rz[:, :H], rz[:, H:]
                n = torch.tanh(torch.addcmul(xp[:, 2 * H :], r, hp[:, 2 * H :]))
                h = torch.lerp(n, h, z)  # (1 - z) * n + z * h
            else:
                w_ihT, w_hhT, b = w
                if k == 0 and self.table is not None:
                    g = torch.addmm(self.table[inp], h, w_hhT)
                else:
                    g = torch.addmm(b, inp, w_ihT).addmm_(h, w_hhT)
                if self.cell == "rnn":
                    h = torch.tanh(g)
                else:
                    s = torch.sigmoid(g)  # (B, 4H); the g-chunk is recomputed with tanh below
                    i, f, o = s[:, :H], s[:, H : 2 * H], s[:, 3 * H :]
                    c = torch.addcmul(f * cs[k], i, torch.tanh(g[:, 2 * H : 3 * H]))
                    h = o * torch.tanh(c)
                    cs[k] = c
            hs[k] = h
            inp = h
        new = (torch.stack(hs),) if cs is None else (torch.stack(hs), torch.stack(cs))
        return inp, new
