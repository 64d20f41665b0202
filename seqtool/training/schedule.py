"""The learning-rate schedule: linear warmup, then cosine / linear / constant decay.

Warmup not given (`TrainConfig.warmup` None) fits the run: 10 % of the planned steps, at
most 100 steps, and on a --time-budget run it also ends by 10 % of the budget, so a short
run never spends itself warming up (a 40-step run used to end at 0.4 of its peak rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from seqtool.config import TrainConfig

AUTO_WARMUP_STEPS = 100  # the most steps a warmup that was not given lasts
WARMUP_SHARE = 0.1  # ... and at most this share of the planned steps (or of the budget)


def auto_warmup(cfg: TrainConfig, total: int | None) -> int:
    """Warmup steps: --warmup when given, else 10 % of `total` planned steps (None: the
    number is not known, a --time-budget run) capped at AUTO_WARMUP_STEPS."""
    if cfg.warmup is not None:
        return cfg.warmup
    if total is None:
        return AUTO_WARMUP_STEPS
    return min(AUTO_WARMUP_STEPS, int(total * WARMUP_SHARE))


def lr_lambda(
    cfg: TrainConfig,
    total: int,
    progress: Callable[[int], float] | None = None,
    warmup: int | None = None,
    time_done: Callable[[], float] | None = None,
) -> Callable[[int], float]:
    """The LR factor by step: warmup (`warmup` steps, default auto_warmup(cfg, total)), then
    decay by progress in [0, 1], steps done / total by default. time_done() gives the share
    of a time budget used: an automatic warmup also ends at WARMUP_SHARE of it."""
    w = auto_warmup(cfg, total) if warmup is None else warmup
    by_time = time_done if cfg.warmup is None else None

    def f(step: int) -> float:
        if w > 0 and step < w:
            frac = (step + 1) / w
            if by_time is not None:
                frac = max(frac, by_time() / WARMUP_SHARE)
            if frac < 1:
                return frac
        if cfg.schedule == "constant":
            return 1.0
        if progress is not None:
            p = progress(step)
        else:
            p = min(1.0, max(0.0, (step - w) / max(1, total - w)))
        decay = 0.5 * (1 + math.cos(math.pi * p)) if cfg.schedule == "cosine" else 1 - p
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay

    return f


def set_hyperparameters(
    optimizer: Any, scheduler: Any, cfg: TrainConfig, factor: Callable[[int], float], step: int
) -> None:
    """After loading saved optimizer and scheduler state: this run's --lr and --weight-decay
    (a resumed run may change them; the saved state holds the old ones), and the LR the
    schedule gives at the step reached. Groups: decayed weights, then the undecayed."""
    scheduler.base_lrs = [cfg.lr] * len(optimizer.param_groups)
    decay = [cfg.weight_decay, 0.0]
    for i, group in enumerate(optimizer.param_groups):
        group["initial_lr"] = cfg.lr
        group["weight_decay"] = decay[i] if i < len(decay) else group["weight_decay"]
        group["lr"] = cfg.lr * factor(max(0, step))
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
