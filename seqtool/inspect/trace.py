"""Step a text through a model's encoder and record every state and gate (`inspect trace`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from seqtool.backbone.cells import run_sequence
from seqtool.errors import SeqtoolError

# Gate names as `run_sequence` records them; the tanh RNN has none.
GATES: dict[str, tuple[str, ...]] = {
    "rnn": (),
    "lstm": ("input", "forget", "candidate", "output"),  # candidate: c~
    "gru": ("reset", "update", "candidate"),
}
DIRECTIONS = ("forward", "backward")


@dataclass
class StepRecord:
    """One time step of one layer and direction."""

    t: int
    token: str
    layer: int
    direction: int
    hidden: list[float]
    cell: list[float] | None  # LSTM only
    gates: dict[str, list[float]]  # gate name -> per-unit activations

    @property
    def hidden_norm(self) -> float:
        return math.sqrt(sum(v * v for v in self.hidden))

    def gate_means(self) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.gates.items()}


@dataclass
class Trace:
    tokens: list[str]
    cell: str
    layers: int  # in the model
    directions: int
    hidden_size: int
    shown_layers: list[int]
    records: list[StepRecord]  # ordered by t, then layer, then direction
    max_abs_diff: float  # lesson cells vs the fused module, over the top layer's outputs


def trace(model: Any, text: str, layers: list[int] | None = None) -> Trace:
    """Step `text` through the model's encoder (`model.inspect_inputs`) with the lesson cells."""
    model.eval()
    tokens, x, rec = model.inspect_inputs(text)  # x (1, T, E)
    rnn = rec.rnn
    n_layers, D = rnn.num_layers, 2 if rnn.bidirectional else 1
    shown = list(range(n_layers)) if layers is None else layers
    for k in shown:
        if not 0 <= k < n_layers:
            raise SeqtoolError(
                f"--layer {k}: this encoder has {n_layers} layer(s), numbered 0 to {n_layers - 1}"
            )
    with torch.no_grad():
        run = run_sequence(rnn, x)
        fused, _ = rec(x)  # (1, T, D*H)
    # Reported rather than asserted: the fused kernels add in another order (~1e-7 apart).
    diff = (run.outputs - fused).abs().max().item()
    records = []
    for t, tok in enumerate(tokens):
        for k in shown:
            for d in range(D):
                s = run.steps[(k, d)]  # name -> (1, T, H)
                records.append(
                    StepRecord(
                        t,
                        tok,
                        k,
                        d,
                        s["h"][0, t].tolist(),
                        s["c"][0, t].tolist() if "c" in s else None,
                        {g: s[g][0, t].tolist() for g in GATES[run.cell]},
                    )
                )
    return Trace(tokens, run.cell, n_layers, D, rnn.hidden_size, shown, records, diff)
