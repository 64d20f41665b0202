"""--ema: an exponential moving average of the weights, evaluated and saved in their place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def update(average: list[torch.Tensor], model: nn.Module, decay: float, step: int) -> None:
    """Move the average towards the model's weights after optimizer step `step`."""
    # Short memory early on, so the average is not dominated by the random init.
    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(average, params, 1.0 - decay)


@contextlib.contextmanager
def swapped_in(model: nn.Module, average: list[torch.Tensor] | None) -> Iterator[None]:
    """Within: the model holds the averaged weights (no-op without an average)."""
    if average is None:
        yield
        return
    params = list(model.parameters())
    with torch.no_grad():
        current = [p.detach().clone() for p in params]
        torch._foreach_copy_([p.data for p in params], average)
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in params], current)
