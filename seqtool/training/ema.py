"""--ema: an exponential moving average of the weights, evaluated and saved in their place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


def update(average: list[torch.Tensor], model: nn.Module, decay: float, step: int) -> None:
    """Move the average towards the model's weights after optimizer step `step`."""
    # Short memory early on, so the average is not dominated by the random init.
    decay = min(decay, (1 + step) / (10 + step))
    # torch's public EMA step (one fused lerp over all tensors), built for this step's decay.
    get_ema_multi_avg_fn(decay)(average, [p.detach() for p in model.parameters()], None)


@contextlib.contextmanager
def swapped_in(model: nn.Module, average: list[torch.Tensor] | None) -> Iterator[None]:
    """Within: the model holds the averaged weights (no-op without an average)."""
    if average is None:
        yield
        return
    params = list(model.parameters())
    with torch.no_grad():
        current = [p.detach().clone() for p in params]
        for p, a in zip(params, average, strict=True):
            p.copy_(a)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, c in zip(params, current, strict=True):
                p.copy_(c)
