"""Look inside recurrent networks: state/gate traces, gradient decay over time, parameter counts.

The library half of `seqtool inspect` (the CLI only formats). Traces and gradients run the
lesson cells of `backbone.cells` over the fused modules' own weights, so what is shown is what
the model computes (the trace reports the difference from the fused module, ~1e-7).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from seqtool.backbone import Recurrent
from seqtool.backbone.cells import run_sequence
from seqtool.config import CELLS
from seqtool.errors import SeqtoolError

GATES: dict[str, tuple[str, ...]] = {
    "rnn": (),
    "lstm": ("input", "forget", "candidate", "output"),  # candidate: c~
    "gru": ("reset", "update", "candidate"),
}
GATE_COUNT = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per cell: h~; i f g o; r z n
DIRECTIONS = ("forward", "backward")
INITS = ("torch", "forget-bias", "chrono")


def parse_cells(spec: str) -> list[str]:
    cells = [c.strip() for c in spec.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if not cells or bad:
        raise SeqtoolError(f"cells must be a comma list of {', '.join(CELLS)}, not {spec!r}")
    return list(dict.fromkeys(cells))


# -- trace -------------------------------------------------------------------------------------


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
    tokens, x, rec = model.inspect_inputs(text)
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
    diff = (run.outputs - fused).abs().max().item()
    records = []
    for t, tok in enumerate(tokens):
        for k in shown:
            for d in range(D):
                s = run.steps[(k, d)]
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


# -- gradients through time --------------------------------------------------------------------


def state_gradients(
    rnn: nn.RNNBase,
    x: torch.Tensor,
    readout: torch.Tensor,
    layer: int = -1,
    clip: float | None = None,
) -> tuple[torch.Tensor, float]:
    """‖∂L/∂h_t‖ for every step t of one layer's forward direction, per sequence.

    L = sum over the batch of readout · (top-layer output at the last step). x (B, T, E),
    readout (D*H,). With `clip`, the gradient flowing back into every step's state (h, and c
    for the LSTM) is rescaled per sequence to norm <= clip, as clipping inside
    back-propagation through time does. Returns norms (B, T) and the weights' gradient norm.
    """
    layer = layer % rnn.num_layers
    hs: list[torch.Tensor] = []

    def clip_hook(g: torch.Tensor) -> torch.Tensor:
        scale = (clip / g.norm(dim=-1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
        return g * scale  # (B, H)

    def on_step(k: int, d: int, t: int, state: tuple[torch.Tensor, ...]) -> None:
        if clip is not None:
            for s in state:
                s.register_hook(clip_hook)
        if k == layer and d == 0:
            state[0].retain_grad()  # .grad is taken after the clip hook ran
            hs.append(state[0])

    rnn.zero_grad(set_to_none=True)
    run = run_sequence(rnn, x, step_hook=on_step)
    loss = (run.outputs[:, -1] @ readout).sum()
    loss.backward()
    norms = torch.stack([h.grad.norm(dim=-1) for h in hs], 1)  # (B, T)
    pg = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in rnn.parameters() if p.grad is not None))
    return norms.detach(), pg


@dataclass
class GradientCurve:
    """Gradient norm against distance d from the last step (d = 0 is the last step)."""

    label: str
    cell: str
    clip: float | None
    norms: list[float]  # geometric mean over sequences and repeats of ‖∂L/∂h_{T-1-d}‖
    relative: list[float]  # norms / norms[0]
    decay_per_step: float  # least-squares factor per step back (< 1 vanishes, > 1 explodes)
    effective_memory: int | None  # first d with relative < threshold; None: never in range
    param_grad_norm: float  # ‖∂L/∂θ‖ over the recurrent weights, mean over repeats
    threshold: float = 1e-3
    settings: dict[str, Any] = field(default_factory=dict)


def summarize(
    label: str,
    cell: str,
    clip: float | None,
    norms: list[torch.Tensor],
    param_norms: list[float],
    threshold: float = 1e-3,
    settings: dict[str, Any] | None = None,
) -> GradientCurve:
    """Average per-sequence norms (each (B, T), aligned at the last step) geometrically:
    decay is exponential, so an arithmetic mean would only show the largest sequence."""
    T = min(n.size(1) for n in norms)
    logs = torch.cat([n[:, -T:] for n in norms]).double().clamp_min(1e-300).log10()  # (N, T)
    mean = logs.mean(0).flip(0)  # (T,) by distance
    rel = mean - mean[0]
    below = (rel < math.log10(threshold)).nonzero()
    eff = int(below[0]) if len(below) else None
    if T > 1:
        d = torch.arange(T, dtype=torch.float64)
        slope = float(((d - d.mean()) * (rel - rel.mean())).sum() / ((d - d.mean()) ** 2).sum())
    else:
        slope = 0.0
    return GradientCurve(
        label,
        cell,
        clip,
        [10.0 ** float(v) for v in mean],
        [10.0 ** float(v) for v in rel],
        10.0**slope,
        eff,
        sum(param_norms) / len(param_norms),
        threshold,
        settings or {},
    )


def make_recurrent(
    cell: str,
    input_size: int,
    hidden: int,
    layers: int = 1,
    init: str = "torch",
    horizon: int = 100,
) -> nn.RNNBase:
    """A freshly initialised fused module. init 'torch': torch's defaults (U(±1/√H) for every
    weight and bias); 'forget-bias': the same with the LSTM forget-gate bias at +1; 'chrono':
    gate biases drawn for time scales up to `horizon` steps (Tallec & Ollivier 2018): LSTM
    forget bias log U(1, horizon - 1) and input bias its negative, GRU update-gate bias the
    same. A tanh RNN has no gate, so every init leaves it at torch's defaults."""
    if init not in INITS:
        raise SeqtoolError(f"--init must be one of {', '.join(INITS)}, not {init!r}")
    if init == "forget-bias":
        return Recurrent(input_size, hidden, layers, cell, forget_bias=1.0).rnn
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    rnn = cls(input_size, hidden, num_layers=layers, batch_first=True)
    if init == "chrono" and cell != "rnn":
        H = hidden
        with torch.no_grad():
            for name, p in rnn.named_parameters():
                if name.startswith("bias_hh"):
                    p.zero_()  # the whole gate bias lives in bias_ih
                elif name.startswith("bias_ih"):
                    b = torch.log(torch.empty(H).uniform_(1, max(2, horizon - 1)))
                    if cell == "lstm":  # gates i, f, g, o
                        p[:H], p[H : 2 * H] = -b, b
                    else:  # gru gates r, z, n; h' = (1 - z) n + z h, so z is "keep"
                        p[H : 2 * H] = b
    return rnn


def scale_recurrent_weights(rnn: nn.RNNBase, scale: float) -> None:
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_hh"):
                p.mul_(scale)


def _check_gradient_options(length: int, repeats: int, batch: int, clip: float | None) -> None:
    if length < 2:
        raise SeqtoolError(f"--length must be >= 2, not {length}")
    if repeats < 1 or batch < 1:
        raise SeqtoolError("--repeats and --batch must be >= 1")
    if clip is not None and clip <= 0:
        raise SeqtoolError(f"--clip must be > 0, not {clip}")


def fresh_gradients(
    cells: list[str],
    length: int = 100,
    hidden: int = 64,
    input_size: int = 32,
    layers: int = 1,
    batch: int = 16,
    weight_scale: float = 1.0,
    clip: float | None = None,
    repeats: int = 3,
    seed: int = 0,
    init: str = "torch",
    threshold: float = 1e-3,
) -> list[GradientCurve]:
    """Gradient decay in freshly initialised cells on N(0, 1) inputs, one curve per cell (and
    one more per cell with `clip`). Repeat r uses seed + r for weights, inputs and readout;
    the clipped and unclipped curves share them. Runs in float64 so tiny norms don't flush."""
    _check_gradient_options(length, repeats, batch, clip)
    if hidden < 1 or input_size < 1 or layers < 1:
        raise SeqtoolError("--hidden, --input and --layers must be >= 1")
    settings = dict(
        length=length, hidden=hidden, input=input_size, layers=layers, batch=batch,
        weight_scale=weight_scale, repeats=repeats, seed=seed, init=init,
    )  # fmt: skip
    curves = []
    for cell in cells:
        for c in [None] if clip is None else [None, clip]:
            norms, pgs = [], []
            for r in range(repeats):
                with torch.random.fork_rng(devices=[]):  # leave the caller's RNG alone
                    torch.manual_seed(seed + r)
                    rnn = make_recurrent(cell, input_size, hidden, layers, init, length).double()
                    scale_recurrent_weights(rnn, weight_scale)
                    x = torch.randn(batch, length, input_size, dtype=torch.float64)
                    readout = torch.randn(hidden, dtype=torch.float64) / math.sqrt(hidden)
                n, pg = state_gradients(rnn, x, readout, clip=c)
                norms.append(n)
                pgs.append(pg)
            label = cell if c is None else f"{cell} clip {c:g}"
            curves.append(summarize(label, cell, c, norms, pgs, threshold, settings))
    return curves


def model_gradients(
    model: Any,
    texts: list[str] | None = None,
    length: int = 100,
    layer: int = -1,
    weight_scale: float = 1.0,
    clip: float | None = None,
    repeats: int = 3,
    seed: int = 0,
    threshold: float = 1e-3,
) -> list[GradientCurve]:
    """The same measurement on a checkpoint's encoder (its forward direction at `layer`).

    Inputs are the encoder's own inputs for `texts` (one sequence each), or, without texts,
    `repeats` random sequences of `length` steps (random vocabulary tokens). The readout is
    random (seeded): the question is how far back the recurrence carries gradient, not what
    the head wants.
    """
    _check_gradient_options(length, repeats, 1, clip)
    model.eval()
    random = not texts
    if random:
        texts = [_random_text(model.tokenizer, length, seed + r) for r in range(repeats)]
    inputs = []
    rec = None
    for text in texts:
        _, x, rec = model.inspect_inputs(text)
        if random:
            x = x[:, :length]  # (1, length, E): random text runs over; keep the first steps
        if x.size(1) < 2:
            raise SeqtoolError("gradients need a text of at least 2 tokens")
        inputs.append(x.detach().double())
    assert rec is not None
    n_layers = rec.rnn.num_layers
    if not -n_layers <= layer < n_layers:
        raise SeqtoolError(f"--layer {layer}: this encoder has layers 0 to {n_layers - 1}")
    rnn = copy.deepcopy(rec.rnn).double()
    for p in rnn.parameters():
        p.requires_grad_(True)
    scale_recurrent_weights(rnn, weight_scale)
    settings = dict(
        model=True, layer=layer % n_layers, cell=rec.cell, hidden=rec.hidden_size,
        weight_scale=weight_scale, sequences=len(inputs), seed=seed,
    )  # fmt: skip
    curves = []
    for c in [None] if clip is None else [None, clip]:
        norms, pgs = [], []
        for i, x in enumerate(inputs):
            g = torch.Generator().manual_seed(seed + i)
            readout = torch.randn(rec.output_size, generator=g, dtype=torch.float64)
            n, pg = state_gradients(rnn, x, readout / math.sqrt(rec.output_size), layer, c)
            norms.append(n)
            pgs.append(pg)
        label = rec.cell if c is None else f"{rec.cell} clip {c:g}"
        curves.append(summarize(label, rec.cell, c, norms, pgs, threshold, settings))
    return curves


def _random_text(tokenizer: Any, length: int, seed: int) -> str:
    """`length` random "words" of 1-6 tokens drawn uniformly from the non-special vocabulary,
    joined by spaces, so that word-level encoders (the tagger) get `length` steps as well."""
    g = torch.Generator().manual_seed(seed)
    specials = {tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id}
    pool = torch.tensor([i for i in range(tokenizer.vocab_size) if i not in specials])
    if len(pool) == 0:
        raise SeqtoolError("the model's vocabulary has no ordinary tokens to sample")
    sizes = torch.randint(1, 7, (length,), generator=g).tolist()
    ids = pool[torch.randint(len(pool), (sum(sizes),), generator=g)].tolist()
    words, at = [], 0
    for n in sizes:
        words.append(
            tokenizer.decode(ids[at : at + n]).strip() or tokenizer.decode(ids[at : at + n])
        )
        at += n
    return " ".join(words)


# -- parameter counts --------------------------------------------------------------------------


@dataclass
class ParamRow:
    component: str
    detail: str
    params: int


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
            parts = pname.split(".")[:-1] or [pname]
            key = ".".join(parts[:2])
        groups.setdefault(key, []).append((pname, p))
    rows = []
    for key, ps in groups.items():
        detail = details.get(key) or " + ".join("×".join(map(str, p.shape)) for _, p in ps)
        rows.append(ParamRow(key, detail, sum(p.numel() for _, p in ps)))
    return rows


def recurrent_formula(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool
) -> int:
    """The lesson's count: each of G weight blocks is W_x (H×I) + W_h (H×H) + two biases
    (torch keeps b_ih and b_hh), G = 1 (RNN), 4 (LSTM: i f g o), 3 (GRU: r z n)."""
    D = 2 if bidirectional else 1
    total = 0
    for k in range(layers):
        n_in = input_size if k == 0 else D * hidden
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
    from seqtool.backbone import Backbone
    from seqtool.config import BackboneConfig

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
