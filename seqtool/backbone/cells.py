"""The seed equations of the RNN, LSTM and GRU cells, written out.

These are the lessons' formulas over torch's weight layout (gate order i, f, g, o for the LSTM;
r, z, n for the GRU). Training always uses the fused modules; these functions serve inspection
(`run_sequence`: whole uni/bidirectional stacks with every state and gate recorded) and the
low-overhead inference `Stepper`, and tests hold them to the fused modules within 1e-5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    return h, c, {"input": i, "forget": f, "candidate": g, "output": o}  # candidate: c~


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

    def __init__(
        self, cell: str, layers: list[tuple[torch.Tensor, ...]], table: torch.Tensor | None
    ):
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
                    table += rnn.bias_hh_l0.detach()
        return cls(cell, layers, table)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        n = 2 if self.cell == "lstm" else 1
        return tuple(torch.zeros(len(self.layers), batch, self.hidden_size) for _ in range(n))

    @torch.inference_mode()
    def step(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """x: token ids (B,) when built with a table, else inputs (B, E). Returns (B, H), state."""
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if self.cell == "lstm" else None
        out = self.advance(x, hs, cs)
        new = (torch.stack(hs),) if cs is None else (torch.stack(hs), torch.stack(cs))
        return out, new

    def advance(self, x: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor] | None):
        """The step itself over per-layer state lists, updated in place (no stack/unbind per
        step: generation loops call this directly). Call under torch.inference_mode()."""
        inp = x
        H = self.hidden_size
        for k, w in enumerate(self.layers):
            h = hs[k]
            if self.cell == "gru":
                w_ihT, w_hhT, b_ih, b_hh = w
                if k == 0 and self.table is not None:
                    xp = self.table[inp]
                else:
                    xp = torch.addmm(b_ih, inp, w_ihT)
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
        return inp


# -- whole sequences over a fused module's weights, every step recorded ---------------------

StepHook = Callable[[int, int, int, tuple[torch.Tensor, ...]], None]


@dataclass
class SequenceRun:
    """What `run_sequence` computed, laid out like the fused module's results.

    `steps[(layer, direction)]` maps "h", "c" (LSTM) and each gate name to (B, T, H);
    direction 1 is the right-to-left stack of a bidirectional module, indexed by position t.
    """

    cell: str
    outputs: torch.Tensor  # (B, T, D*H): the top layer, as nn.RNNBase returns it
    h_n: torch.Tensor  # (L*D, B, H)
    c_n: torch.Tensor | None  # (L*D, B, H) for the LSTM
    steps: dict[tuple[int, int], dict[str, torch.Tensor]] = field(default_factory=dict)


def cell_of(rnn: nn.RNNBase) -> str:
    """'rnn' | 'lstm' | 'gru' for a fused module the lesson equations cover."""
    if isinstance(rnn, nn.LSTM):
        if rnn.proj_size:
            raise ValueError("LSTM projections (proj_size) are not part of the lesson cell")
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN) and rnn.nonlinearity == "tanh":
        return "rnn"
    raise ValueError(f"no lesson cell for {type(rnn).__name__}")


def run_sequence(
    rnn: nn.RNNBase,
    x: torch.Tensor,
    state: tuple[torch.Tensor, ...] | None = None,
    step_hook: StepHook | None = None,
) -> SequenceRun:
    """Run a fused module's weights through the lesson cells, one step at a time.

    x is (B, T, E) if `rnn.batch_first` else (T, B, E); state is (h0,) or (h0, c0), each
    (L*D, B, H). Reproduces `rnn(x, state)` in eval mode (no inter-layer dropout). Autograd
    flows through it, and `step_hook(layer, direction, t, (h,) or (h, c))` sees every new
    state tensor, so callers can retain or reshape its gradient.
    """
    cell = cell_of(rnn)
    if not rnn.batch_first:
        x = x.transpose(0, 1)
    B, T, _ = x.shape
    H, D, L = rnn.hidden_size, 2 if rnn.bidirectional else 1, rnn.num_layers
    if state is None:
        zeros = x.new_zeros(L * D, B, H)
        state = (zeros, zeros) if cell == "lstm" else (zeros,)
    steps: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    h_n, c_n = [], []
    inp = x  # (B, T, E) for layer 0, (B, T, D*H) above
    for k in range(L):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(rnn, "weight_ih" + sfx), getattr(rnn, "weight_hh" + sfx)
            if rnn.bias:
                b_ih, b_hh = getattr(rnn, "bias_ih" + sfx), getattr(rnn, "bias_hh" + sfx)
            else:
                b_ih = b_hh = w_hh.new_zeros(w_hh.size(0))
            xp = inp @ w_ih.t() + b_ih  # (B, T, G*H): the input half of every step, at once
            h = state[0][k * D + d]
            c = state[1][k * D + d] if cell == "lstm" else None
            rec: dict[str, list[torch.Tensor]] = {}
            order = range(T - 1, -1, -1) if d else range(T)
            for t in order:
                gates: dict[str, torch.Tensor] = {}
                if cell == "rnn":
                    h = rnn_cell(xp[:, t], h, w_hh, b_hh)
                elif cell == "lstm":
                    h, c, gates = lstm_cell(xp[:, t], h, c, w_hh, b_hh)
                else:
                    h, gates = gru_cell(xp[:, t], h, w_hh, b_hh)
                if step_hook is not None:
                    step_hook(k, d, t, (h,) if c is None else (h, c))
                rec.setdefault("h", []).append(h)
                if c is not None:
                    rec.setdefault("c", []).append(c)
                for name, g in gates.items():
                    rec.setdefault(name, []).append(g)
            if d:  # recorded right to left; store by position
                rec = {n: v[::-1] for n, v in rec.items()}
            steps[(k, d)] = {n: torch.stack(v, 1) for n, v in rec.items()}  # (B, T, H)
            outs.append(steps[(k, d)]["h"])
            h_n.append(h)
            if c is not None:
                c_n.append(c)
        inp = torch.cat(outs, -1)  # (B, T, D*H)
    outputs = inp if rnn.batch_first else inp.transpose(0, 1)
    return SequenceRun(cell, outputs, torch.stack(h_n), torch.stack(c_n) if c_n else None, steps)
