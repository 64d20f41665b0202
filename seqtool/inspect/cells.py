"""Which cells follow which probe (`seqtool inspect cells`): every unit of every layer,
direction and state (h; c for the LSTM), correlated over the text with each probe.

Statistics are running sums (bounded memory whatever the text's length): per unit the sum
and sum of squares, per unit and probe the sum of products, all shifted by the first batch's
means so float64 sums keep their digits. Two ways through the text:

- an LM reads it as one stream. It is cut into B parallel streams, each preceded by a warm-up
  of the text just before it (run, not counted), so each step is one (B, H) matrix product
  instead of B vector products; the backbone's inference `Stepper` runs them and hands out h
  and c at every step. Stream 0 starts at the text's start and is exact; `streams=1` is
  exact throughout.
- any other model reads each line (or table row) as one input, as it does when it runs;
  the lesson cells (`backbone.cells.run_sequence`) give every state of both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from seqtool.backbone.cells import run_sequence
from seqtool.errors import SeqtoolError
from seqtool.inspect.cells_probes import Probe, probe_values, token_ends

DIRECTIONS = ("forward", "backward")
WINDOW = 64  # steps per stream between statistics updates
STREAM_WARMUPS = 8  # a stream reads at least this many warm-ups' worth of text (<= 12.5 %)


@dataclass(frozen=True)
class Group:
    """H units: one state of one layer and direction."""

    layer: int
    direction: int
    state: str  # "h" | "c"


@dataclass
class Source:
    """The text as the encoder reads it: `ends[i]` is token i's exclusive end in `text`."""

    text: str
    ends: np.ndarray  # (N,) int64
    pieces: list[str]
    segments: list[tuple[int, int]] | None = None  # line mode: token ranges [a, b)
    ids: np.ndarray | None = None  # stream mode: token ids in reading order
    reverse: bool = False  # a backward LM reads right to left
    inputs: Callable[[int], torch.Tensor] | None = None  # line mode: segment -> x (1, T, E)
    rnn: torch.nn.RNNBase | None = None  # line mode: the encoder's fused module


@dataclass
class CellStats:
    cell: str
    groups: list[Group]
    hidden: int
    probes: list[Probe]
    r: torch.Tensor  # (G, P, H)
    skipped: dict[str, str]  # probe name -> why it is not ranked
    tokens: int
    shown: torch.Tensor  # (S, G, H): every unit over the first S tokens
    pooled: torch.Tensor | None = None  # (R, G, H): per segment, labelled tables only
    streams: int = 1
    warmup: int = 0
    notes: list[str] = field(default_factory=list)

    def find(self, layer: int, direction: int, state: str) -> int:
        for g, grp in enumerate(self.groups):
            if (grp.layer, grp.direction, grp.state) == (layer, direction, state):
                return g
        raise KeyError((layer, direction, state))


class Correlations:
    """Running sums for Pearson r between G x H units and P probes."""

    def __init__(self, G: int, H: int, P: int) -> None:
        f = torch.float64
        self.n = 0
        self.kx: torch.Tensor | None = None
        self.ky: torch.Tensor | None = None
        self.sx, self.sxx = torch.zeros(G, H, dtype=f), torch.zeros(G, H, dtype=f)
        self.sy, self.syy = torch.zeros(P, dtype=f), torch.zeros(P, dtype=f)
        self.sxy = torch.zeros(G, P, H, dtype=f)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """x (G, N, H) unit values, y (N, P) probe values of the same N tokens. x is used up
        (shifted and squared in place: no copy of a window's worth of states)."""
        if x.size(1) == 0:
            return
        if self.kx is None:
            self.kx, self.ky = x.mean(1, keepdim=True), y.mean(0)
        xc, yc = x.sub_(self.kx), y - self.ky  # (G, N, H), (N, P)
        self.n += x.size(1)
        self.sx += xc.sum(1)
        self.sxy += torch.matmul(yc.t(), xc)  # (G, P, H)
        self.sxx += xc.square_().sum(1)
        self.sy += yc.sum(0)
        self.syy += (yc * yc).sum(0)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """r (G, P, H), 0 where a unit is constant; and each probe's variance (P,)."""
        n = max(self.n, 1)
        mx, my = self.sx / n, self.sy / n
        vx = (self.sxx / n - mx * mx).clamp_min(0)  # (G, H)
        vy = (self.syy / n - my * my).clamp_min(0)  # (P,)
        cov = self.sxy / n - my[None, :, None] * mx[:, None, :]  # (G, P, H)
        den = (vx[:, None, :] * vy[None, :, None]).sqrt()
        live = den > 1e-12 * (1 + mx.abs().amax())
        r = torch.where(live, cov / den.clamp_min(1e-300), torch.zeros_like(cov))
        return r.clamp(-1, 1).float(), vy


def groups_of(rnn: torch.nn.RNNBase, cell: str) -> list[Group]:
    states = ("h", "c") if cell == "lstm" else ("h",)
    D = 2 if rnn.bidirectional else 1
    return [Group(k, d, s) for k in range(rnn.num_layers) for d in range(D) for s in states]


def probe_matrix(source: Source, probes: list[Probe]) -> tuple[np.ndarray, dict[str, str]]:
    """(N, P) probe values per token (at its last character); regexes that never match are
    reported here, before the model runs."""
    at = np.clip(source.ends - 1, 0, max(len(source.text) - 1, 0))
    cols, skipped = [], {}
    for p in probes:
        v = probe_values(p, source.text)
        if p.regex is not None and not v.any():
            skipped[p.name] = f"the regex {p.regex!r} never matches the text"
        cols.append(v[at] if len(v) else np.zeros(len(at), np.float32))
    return np.stack(cols, 1).astype(np.float32), skipped


def _stream_layout(n: int, streams: int, warmup: int) -> tuple[np.ndarray, ...]:
    """Per stream: first token read (warm-up included), tokens counted from, length."""
    seg = math.ceil(n / streams)
    begin = np.arange(streams) * seg
    warm = np.minimum(begin, warmup)
    end = np.minimum(begin + seg, n)
    return begin - warm, warm, warm + np.maximum(end - begin, 0)


def _layer_window(cell: str, w: tuple, xp: torch.Tensor, h, c, hbuf, cbuf):
    """One layer over S steps of B streams, as the fused kernel runs it: the input projections
    xp (S, B, G*H) are given (one matrix product for the window), each step adds the
    recurrent one. Writes h (and c) of every step into hbuf (cbuf), each (S, B, H)."""
    H = h.size(1)
    w_hhT = w[1]
    for s in range(xp.size(0)):
        x = xp[s]  # (B, G*H)
        if cell == "gru":  # b_hn sits inside r * (...), as in Stepper.advance
            hp = torch.addmm(w[3], h, w_hhT)
            rz = torch.sigmoid(x[:, : 2 * H] + hp[:, : 2 * H])
            n = torch.tanh(torch.addcmul(x[:, 2 * H :], rz[:, :H], hp[:, 2 * H :]))
            h = torch.lerp(n, h, rz[:, H:])
        else:
            g = torch.addmm(x, h, w_hhT)
            if cell == "rnn":
                h = torch.tanh(g)
            else:
                sg = torch.sigmoid(g)  # (B, 4H): i, f, -, o; the candidate is tanh
                c = torch.addcmul(sg[:, H : 2 * H] * c, sg[:, :H], torch.tanh(g[:, 2 * H : 3 * H]))
                h = sg[:, 3 * H :] * torch.tanh(c)
                cbuf[s] = c
        hbuf[s] = h
    return h, c


def _run_streams(model: Any, source: Source, streams: int, warmup: int) -> Iterator[Any]:
    """Yield (x (G, N, H), token indices (N,)) per window of the parallel streams."""
    enc = model.backbone
    cell, H = enc.rnn.cell, enc.rnn.hidden_size
    L = enc.rnn.layers
    stepper = enc.stepper()  # transposed weights, folded biases, layer 0 as a lookup table
    ids = torch.from_numpy(source.ids)
    first, warm, length = (torch.from_numpy(a) for a in _stream_layout(len(ids), streams, warmup))
    T = int(length.max())
    hs = [torch.zeros(streams, H) for _ in range(L)]
    cs = [torch.zeros(streams, H) for _ in range(L)]
    per = 2 if cell == "lstm" else 1  # groups per layer: h [, c]
    steps = torch.arange(T)
    full = torch.empty(L * per, WINDOW, streams, H)  # reused: the consumer uses it up in turn
    with torch.inference_mode():
        for t0 in range(0, T, WINDOW):
            S = min(WINDOW, T - t0)
            pos = first[None, :] + steps[t0 : t0 + S, None]  # (S, B) token read at each step
            buf = full if S == WINDOW else torch.empty(L * per, S, streams, H)
            inp = None
            for k, w in enumerate(stepper.layers):
                if k == 0:
                    xp = stepper.table[ids[pos.clamp_max(len(ids) - 1)]]  # (S, B, G*H)
                else:
                    xp = torch.addmm(w[2], inp.reshape(S * streams, H), w[0])
                    xp = xp.view(S, streams, -1)
                cbuf = buf[k * per + 1] if per == 2 else None
                hs[k], cs[k] = _layer_window(cell, w, xp, hs[k], cs[k], buf[k * per], cbuf)
                inp = buf[k * per]
            rel = steps[t0 : t0 + S, None]  # (S, 1)
            keep = ((rel >= warm[None, :]) & (rel < length[None, :])).flatten()  # (S*B,)
            x = buf.view(L * per, S * streams, H)
            if keep.all():  # past every warm-up and before every end: no copy
                yield x, pos.flatten()
            else:
                where = keep.nonzero().squeeze(1)
                yield x.index_select(1, where), pos.flatten()[where]


def _run_lines(model: Any, source: Source, pool: str | None) -> Iterator[Any]:
    """Yield (x (G, T, H), token indices, pooled (G, H) or None) per segment."""
    rnn = source.rnn
    for i, (a, b) in enumerate(source.segments or []):
        x = source.inputs(i)  # (1, T, E)
        with torch.inference_mode():
            run = run_sequence(rnn, x)
        states = [
            run.steps[(k, d)][s][0]  # (T, H)
            for k in range(rnn.num_layers)
            for d in range(2 if rnn.bidirectional else 1)
            for s in (("h", "c") if run.cell == "lstm" else ("h",))
        ]
        xs = torch.stack(states)  # (G, T, H)
        pooled = None
        if pool is not None:
            pooled = _pool(xs, pool, rnn.bidirectional, run.cell)
        yield xs, torch.arange(a, b), pooled


def _pool(xs: torch.Tensor, how: str, bidirectional: bool, cell: str) -> torch.Tensor:
    """One value per unit of a segment, as the classifier pools: (G, T, H) -> (G, H)."""
    if how == "max":
        return xs.amax(1)
    if how == "mean":
        return xs.mean(1)
    per_dir = 2 if cell == "lstm" else 1  # groups per (layer, direction)
    D = 2 if bidirectional else 1
    last = [xs[g, 0 if (g // per_dir) % D == 1 else -1] for g in range(xs.size(0))]
    return torch.stack(last)  # the final state: t = T-1 forward, t = 0 backward


def correlate(
    model: Any,
    source: Source,
    probes: list[Probe],
    show: int,
    streams: int = 0,
    warmup: int = 1000,
    pool: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CellStats:
    """One pass over the source: every unit's r with every probe, and the first `show`
    tokens' values of every unit (for the page)."""
    model.eval()
    n = len(source.ends)
    if n == 0:
        raise SeqtoolError("nothing to inspect: the text has no tokens")
    y_all, skipped = probe_matrix(source, probes)
    if source.reverse:
        y_all = y_all[::-1].copy()  # reading order
    y_all = torch.from_numpy(y_all)
    if source.ids is not None:
        rnn = model.backbone.rnn.rnn
        streams = streams or max(1, min(64, n // (STREAM_WARMUPS * max(warmup, 1))))
        streams = min(streams, n)
        batches = ((x, i, None) for x, i in _run_streams(model, source, streams, warmup))
    else:
        rnn = source.rnn
        streams, warmup = 1, 0
        batches = _run_lines(model, source, pool)
    if rnn is None:
        raise SeqtoolError("nothing to inspect: the text has no tokens")
    from seqtool.backbone.cells import cell_of

    cell = cell_of(rnn)
    groups = groups_of(rnn, cell)
    H = rnn.hidden_size
    acc = Correlations(len(groups), H, len(probes))
    S = min(show, n)
    shown = torch.zeros(S, len(groups), H)
    pooled: list[torch.Tensor] = []
    done = 0
    for x, idx, p in batches:
        if p is not None:
            pooled.append(p)
        order = idx if not source.reverse else n - 1 - idx  # text order
        sel = (order < S).nonzero().squeeze(1)
        if len(sel):
            shown[order[sel]] = x[:, sel].transpose(0, 1)
        done += x.size(1)
        acc.add(x, y_all[idx])  # last: it uses x up
        if progress is not None:
            progress(done, n)
    r, vy = acc.result()
    for j, p in enumerate(probes):
        if p.name not in skipped and vy[j] <= 1e-12:
            skipped[p.name] = f"constant ({float(y_all[0, j]):g}) on this text: nothing to follow"
    return CellStats(
        cell, groups, H, probes, r, skipped, n, shown,
        torch.stack(pooled) if pooled else None, streams, warmup,
    )  # fmt: skip


@dataclass(frozen=True)
class Ranked:
    probe: str
    rank: int
    group: Group
    unit: int
    r: float


def rank(stats: CellStats, top: int) -> list[Ranked]:
    """Each ranked probe's `top` units by |r|."""
    out = []
    G, P, H = stats.r.shape
    for j, p in enumerate(stats.probes):
        if p.name in stats.skipped:
            continue
        flat = stats.r[:, j, :].reshape(-1)  # (G*H,)
        best = flat.abs().topk(min(top, flat.numel())).indices.tolist()
        for i, b in enumerate(best):
            out.append(Ranked(p.name, i + 1, stats.groups[b // H], b % H, float(flat[b])))
    return out


def stream_source(model: Any, text: str, name: str) -> Source:
    """An LM's view of `text`: one token stream (characters outside a char vocabulary are an
    error naming their line and column)."""
    tok = model.tokenizer
    unknown = getattr(tok, "unknown", None)
    if unknown is not None:
        bad = next(iter(unknown(text)), None)
        if bad is not None:
            pos, ch = bad
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
            raise SeqtoolError(
                f"{name}:{line}:{col}: character {ch!r} is not in this model's vocabulary"
            )
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    if len(ids) and len(ids) == len(text):
        pieces = list(text)
    else:
        pieces = [tok.id_to_piece(int(i)) for i in ids]
    ends = np.asarray(token_ends(text, pieces), dtype=np.int64)
    reverse = bool(getattr(model.config, "reverse", False))
    return Source(text, ends, pieces, ids=ids[::-1].copy() if reverse else ids, reverse=reverse)


def line_source(model: Any, text: str) -> Source:
    """Each non-blank line one input, as the model reads it when it runs (`inspect_inputs`)."""
    ends: list[int] = []
    pieces: list[str] = []
    segments: list[tuple[int, int]] = []
    spans: list[tuple[int, int]] = []
    rnn = None
    at = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.strip():
            with torch.inference_mode():
                toks, _, rec = model.inspect_inputs(body)
            rnn = rec.rnn
            segments.append((len(ends), len(ends) + len(toks)))
            spans.append((at, at + len(body)))
            pieces += toks
            ends += token_ends(body, toks, at)
        at += len(line)

    def inputs(i: int) -> torch.Tensor:
        a, b = spans[i]
        with torch.inference_mode():
            return model.inspect_inputs(text[a:b])[1]

    ends_ = np.asarray(ends, dtype=np.int64)
    return Source(text, ends_, pieces, segments, inputs=inputs, rnn=rnn)
