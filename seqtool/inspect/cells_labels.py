"""The "sentiment unit" (Radford et al. 2017) of `seqtool inspect cells`: for a classifier and
a labelled table, the unit whose pooled activation alone best separates the two labels.

Each row is pooled as the classifier pools (last | max | mean), for every unit of every
layer, direction and state; a one-unit classifier is a threshold on that value, and its
accuracy (threshold fit on the same table) stands beside the full model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqtool.inspect.cells import CellStats, Group, Source


@dataclass(frozen=True)
class LabelUnit:
    rank: int
    group: Group
    unit: int
    r: float  # point-biserial: pooled value vs label (0/1)
    accuracy: float  # best one-threshold classifier on this unit, fit on the table


@dataclass
class Labelled:
    source: Source
    labels: np.ndarray  # (R,) label ids
    names: list[str]
    model_accuracy: float


def labelled_source(model: Any, path: str) -> Labelled:
    """The table's rows as the classifier reads them (its tokenizer, lowercasing, truncation),
    joined by line ends into the text the probes and the page see; the model's accuracy."""
    enc = model.eval_data(path)
    accuracy = float(model.evaluate(enc)["accuracy"])
    ids = [list(map(int, enc.ids[i])) for i in range(len(enc.ids))]
    text, ends, pieces, segments = [], [], [], []
    at = 0
    for row in ids:
        toks = [model.tokenizer.id_to_piece(i) for i in row]
        segments.append((len(ends), len(ends) + len(toks)))
        for t in toks:
            s = t.replace("\u2581", " ")
            text.append(s)
            at += len(s)
            ends.append(at)
            pieces.append(t)
        text.append("\n")
        at += 1

    def inputs(i: int) -> torch.Tensor:
        with torch.inference_mode():
            return model.backbone.embed(torch.tensor([ids[i]]))  # (1, T, E)

    source = Source(
        "".join(text), np.asarray(ends, dtype=np.int64), pieces, segments, inputs=inputs,
        rnn=model.backbone.rnn.rnn,
    )  # fmt: skip
    labels = np.asarray(enc.labels, dtype=np.int64)
    return Labelled(source, labels, list(model.labels), accuracy)


def threshold_accuracy(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """values (R, U), labels (R,) in {0, 1} -> (U,) accuracy of the best rule
    "label 1 above t" or "label 1 below t" per unit (t between two distinct values)."""
    R = values.size(0)
    v, order = values.sort(0)  # (R, U)
    y = labels[order].double()  # (R, U)
    ones_below = torch.cat([y.new_zeros(1, y.size(1)), y.cumsum(0)])  # (R+1, U): first i rows
    i = torch.arange(R + 1, dtype=torch.float64)[:, None]
    ones = y.sum(0, keepdim=True)
    above = (i - ones_below + ones - ones_below) / R  # rows < i say 0, rows >= i say 1
    acc = torch.maximum(above, 1 - above)
    split = torch.ones(R + 1, y.size(1), dtype=torch.bool)
    split[1:R] = v[1:] > v[:-1]  # a threshold can fall only between distinct values
    return acc.masked_fill(~split, 0).amax(0)


def label_units(stats: CellStats, labelled: Labelled, top: int) -> tuple[list[LabelUnit], str]:
    """The `top` units by one-unit accuracy; or none and the reason."""
    if stats.pooled is None:
        return [], "no pooled rows"
    if len(labelled.names) != 2:
        return [], f"a one-unit threshold needs two labels; the model has {len(labelled.names)}"
    y = torch.from_numpy(labelled.labels)
    if len(set(y.tolist())) < 2:
        return [], "the table holds one label only"
    G, H = stats.pooled.shape[1:]
    x = stats.pooled.reshape(len(y), G * H).double()  # (R, G*H)
    acc = threshold_accuracy(x, y)
    xc, yc = x - x.mean(0), y.double() - y.double().mean()
    den = (xc.pow(2).sum(0) * yc.pow(2).sum()).sqrt()
    r = torch.where(den > 0, (xc * yc[:, None]).sum(0) / den.clamp_min(1e-300), 0.0)
    best = acc.topk(min(top, acc.numel())).indices.tolist()
    return [
        LabelUnit(k + 1, stats.groups[b // H], b % H, float(r[b]), float(acc[b]))
        for k, b in enumerate(best)
    ], ""
