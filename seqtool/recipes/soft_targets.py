"""Soft targets (distillation from a teacher): a row's score column is the probability its
label should get, the rest spread evenly over the other labels (`train classifier
--score-column`, on what `seqtool pseudo-label` writes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seqtool.errors import SeqtoolError


def soft_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy against a target that gives each row's label probability `score` and
    spreads the rest evenly over the other classes (a teacher's belief, exact for two
    classes); plain cross-entropy when scores is None (every score 1)."""
    if scores is None:
        return F.cross_entropy(logits.float(), labels)
    logp = logits.float().log_softmax(-1)  # (B, C)
    own = logp.gather(1, labels[:, None]).squeeze(1)  # (B,)
    rest = (logp.sum(-1) - own) / (logp.size(-1) - 1)  # (B,) mean over the other classes
    return -(scores * own + (1 - scores) * rest).mean()


def row_scores(tables: Sequence[Any], column: str) -> np.ndarray:
    """Each training row's target probability for its label: the score column of the tables
    that have it, 1 (certain) for rows of tables without it (gold data beside teacher data)."""
    if not any(tb.has_column(column) for tb in tables):
        where = ", ".join(dict.fromkeys(tb.path for tb in tables))
        raise SeqtoolError(f"--score-column {column!r}: no training file has that column ({where})")
    return np.concatenate(
        [
            tb.probabilities(column) if tb.has_column(column) else np.ones(len(tb), np.float32)
            for tb in tables
        ]
    )
