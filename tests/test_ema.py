"""--ema: the weight average against one computed by hand, and the swap in and back."""

from __future__ import annotations

import torch
from torch import nn

from seqtool.training import ema


def test_average_equals_a_hand_computed_one():
    torch.manual_seed(0)
    model = nn.LSTM(4, 8, 2)
    average = [p.detach().clone() for p in model.parameters()]
    by_hand = [p.detach().double().clone() for p in model.parameters()]
    for step in range(6):
        with torch.no_grad():  # stands in for an optimizer step
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update(average, model, 0.999, step)
        d = min(0.999, (1 + step) / (10 + step))  # short memory early on
        params = [p.detach().double() for p in model.parameters()]
        by_hand = [d * a + (1 - d) * p for a, p in zip(by_hand, params, strict=True)]
    for a, h in zip(average, by_hand, strict=True):
        torch.testing.assert_close(a.double(), h, rtol=0, atol=1e-6)
    # The decay caps at the one given once the warm-up formula exceeds it.
    weights = [p.detach().clone() for p in model.parameters()]
    before = [a.clone() for a in average]
    ema.update(average, model, 0.5, 1000)
    for a, b, p in zip(average, before, weights, strict=True):
        torch.testing.assert_close(a, (b + p) / 2)


def test_swapped_in_holds_the_average_and_restores_the_weights():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    weights = [p.detach().clone() for p in model.parameters()]
    average = [torch.randn_like(p) for p in model.parameters()]
    with ema.swapped_in(model, average):
        assert all(torch.equal(p, a) for p, a in zip(model.parameters(), average, strict=True))
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))
    assert all(p.requires_grad for p in model.parameters())
    with ema.swapped_in(model, None):  # no average: nothing changes
        assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights, strict=True))
