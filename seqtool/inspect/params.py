"""Parameter counts per component, and the three cells against the lesson formula
(`inspect params`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from seqtool.backbone import Backbone, Recurrent
from seqtool.config import CELLS, BackboneConfig
from seqtool.errors import SeqtoolError
from seqtool.inspect.trace import DIRECTIONS

GATE_COUNT = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per cell: h~; i f g o; r z n


@dataclass
class ParamRow:
    component: str
    detail: str
    params: int


# torch names a stack's parameters weight_ih_l0, bias_hh_l1_reverse, ...
_LAYER = re.compile(r"_l(\d+)(_reverse)?$")


def count_params(model: nn.Module) -> list[ParamRow]:
    """Parameters per component: each recurrent layer and direction on its own row, every
    other parameter under its first two name parts (backbone.embedding, head, ...). The rows
    partition `model.named_parameters()`, so they sum to sum(p.numel())."""
    stacks: dict[str, tuple[str, nn.RNNBase]] = {}  # parameter prefix -> (label, module)
    for name, m in model.named_modules():
        if isinstance(m, Recurrent):
            stacks[f"{name}.rnn." if name else "rnn."] = (name or "recurrent", m.rnn)
        elif isinstance(m, nn.RNNBase) and not any(f"{name}.".startswith(p) for p in stacks):
            stacks[f"{name}." if name else ""] = (name or "recurrent", m)
    groups: dict[str, list[tuple[str, torch.Tensor]]] = {}
    details: dict[str, str] = {}
    for pname, p in model.named_parameters():
        for prefix, (label, rnn) in stacks.items():
            if pname.startswith(prefix) and (m := _LAYER.search(pname)):
                k, rev = int(m.group(1)), bool(m.group(2))
                key = f"{label} layer {k} {DIRECTIONS[rev]}"
                n_in = rnn.input_size if k == 0 else rnn.hidden_size * (1 + rnn.bidirectional)
                kind = {"RNN_TANH": "rnn", "RNN_RELU": "rnn-relu"}.get(rnn.mode, rnn.mode.lower())
                details[key] = f"{kind} {n_in}→{rnn.hidden_size}"
                break
        else:
            key = _component(pname)
        groups.setdefault(key, []).append((pname, p))
    rows = []
    for key, ps in groups.items():
        detail = details.get(key) or " + ".join("×".join(map(str, p.shape)) for _, p in ps)
        rows.append(ParamRow(key, detail, sum(p.numel() for _, p in ps)))
    return rows


def _component(pname: str) -> str:
    """A parameter's row: its module path without the tensor name and without an embedding's
    inner `embed`, at most three parts deep (backbone.embedding, decoder.attention.key_proj,
    head; a bare parameter such as decoder.out_bias keeps its own name)."""
    parts = pname.split(".")
    if len(parts) > 1 and parts[-1] in ("weight", "bias"):
        parts = parts[:-1]
    if len(parts) > 1 and parts[-1] == "embed":
        parts = parts[:-1]
    return ".".join(parts[:3])


def checked_counts(model: nn.Module) -> tuple[list[ParamRow], int]:
    """`count_params` and the model's total, checked to agree: the rows partition
    `named_parameters`, so a mismatch is a bug here, not a user error."""
    rows = count_params(model)
    total = sum(p.numel() for p in model.parameters())
    counted = sum(r.params for r in rows)
    if counted != total:
        raise RuntimeError(f"per-component counts sum to {counted}, the model has {total}")
    return rows, total


def recurrent_formula(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool
) -> int:
    """The lesson's count: each of G weight blocks is W_x (H×I) + W_h (H×H) + two biases
    (torch keeps b_ih and b_hh), G = 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n)."""
    D = 2 if bidirectional else 1
    total = 0
    for k in range(layers):
        n_in = input_size if k == 0 else D * hidden  # upper layers read both directions
        total += D * GATE_COUNT[cell] * (hidden * (n_in + hidden) + 2 * hidden)
    return total


@dataclass
class CellComparison:
    cell: str
    params: int  # counted on torch's module
    formula: int
    ratio_to_rnn: float


def compare_cells(
    input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False
) -> list[CellComparison]:
    """Parameters of each cell for the same sizes, torch's count beside the lesson formula."""
    out = []
    for cell in CELLS:
        m = Recurrent(input_size, hidden, layers, cell, bidirectional).rnn
        n = sum(p.numel() for p in m.parameters())
        out.append(
            CellComparison(
                cell, n, recurrent_formula(cell, input_size, hidden, layers, bidirectional), 0.0
            )
        )
    for c in out:
        c.ratio_to_rnn = c.params / out[0].params  # CELLS starts with rnn
    return out


def config_model(
    cell: str,
    input_size: int | None,
    hidden: int,
    layers: int = 1,
    bidirectional: bool = False,
    vocab: int | None = None,
    embedding_dim: int | None = None,
) -> nn.Module:
    """A model of the given sizes to count: a bare Recurrent, or a Backbone with --vocab."""
    if cell not in CELLS:
        raise SeqtoolError(f"--cell must be one of {', '.join(CELLS)}, not {cell!r}")
    if hidden < 1 or layers < 1:
        raise SeqtoolError("--hidden and --layers must be >= 1")
    if vocab is not None:
        cfg = BackboneConfig(
            vocab_size=vocab,
            embedding_dim=embedding_dim or input_size or 64,
            hidden_size=hidden,
            layers=layers,
            cell=cell,
            bidirectional=bidirectional,
        )
        return Backbone(cfg)
    if input_size is None or input_size < 1:
        raise SeqtoolError("give --input (the size of each input vector), or --vocab")
    return Recurrent(input_size, hidden, layers, cell, bidirectional)
