"""How far back gradient reaches: ‖∂L/∂h_t‖ against the distance from the last step
(`inspect gradients`), in freshly initialised cells or in a checkpoint's encoder."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from seqtool.backbone import Recurrent
from seqtool.backbone.cells import run_sequence
from seqtool.config import CELLS
from seqtool.errors import SeqtoolError

INITS = ("torch", "forget-bias", "chrono")


def parse_cells(spec: str) -> list[str]:
    """`--cells rnn,lstm,gru` -> the cells in order, each once."""
    cells = [c.strip() for c in spec.split(",") if c.strip()]
    bad = [c for c in cells if c not in CELLS]
    if not cells or bad:
        raise SeqtoolError(f"cells must be a comma list of {', '.join(CELLS)}, not {spec!r}")
    return list(dict.fromkeys(cells))


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

    def clip_hook(g: torch.Tensor) -> torch.Tensor:  # g (B, H)
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
    if T > 1:  # slope of log10(relative) against d, by least squares
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
    # Built by the backbone, as training builds it: the same module and the same random draws.
    forget_bias = 1.0 if init == "forget-bias" else 0.0
    rnn = Recurrent(input_size, hidden, layers, cell, forget_bias=forget_bias).rnn
    if init == "chrono" and cell != "rnn":
        H = hidden
        with torch.no_grad():
            for name, p in rnn.named_parameters():
                if name.startswith("bias_hh"):
                    p.zero_()  # the whole gate bias lives in bias_ih
                elif name.startswith("bias_ih"):
                    b = torch.log(torch.empty(H).uniform_(1, max(2, horizon - 1)))  # (H,)
                    if cell == "lstm":  # gates i, f, g, o
                        p[:H], p[H : 2 * H] = -b, b
                    else:  # gru gates r, z, n; h' = (1 - z) n + z h, so z is "keep"
                        p[H : 2 * H] = b
    return rnn


def scale_recurrent_weights(rnn: nn.RNNBase, scale: float) -> None:
    """Multiply every W_hh in place: the factor that decides vanishing vs exploding."""
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
                    x = torch.randn(batch, length, input_size, dtype=torch.float64)  # (B, T, E)
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
        _, x, rec = model.inspect_inputs(text)  # x (1, T, E)
        if random:
            x = x[:, :length]  # (1, length, E): random text runs over; keep the first steps
        if x.size(1) < 2:
            raise SeqtoolError("gradients need a text of at least 2 tokens")
        inputs.append(x.detach().double())
    assert rec is not None
    n_layers = rec.rnn.num_layers
    if not -n_layers <= layer < n_layers:
        raise SeqtoolError(f"--layer {layer}: this encoder has layers 0 to {n_layers - 1}")
    # A float64 copy: the model's own weights stay as they are (scaled, with gradients).
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
            readout = torch.randn(rec.output_size, generator=g, dtype=torch.float64)  # (D*H,)
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
