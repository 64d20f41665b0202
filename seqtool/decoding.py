"""Sampling (temperature, top-k, top-p), greedy choice and beam search over step functions."""

from __future__ import annotations

import torch

from seqtool.errors import ConfigError


def check_sampling(temperature: float, top_k: int, top_p: float) -> None:
    if temperature < 0:
        raise ConfigError(f"--temperature must be >= 0, not {temperature}")
    if top_k < 0:
        raise ConfigError(f"--top-k must be >= 0, not {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"--top-p must be in (0, 1], not {top_p}")


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """logits (B, V) -> ids (B,). Temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if 0 < top_k < logits.size(-1) and top_p >= 1.0:
        # Fast path: sample among the k best directly (no full-vocabulary mask and softmax).
        vals, idx = torch.topk(logits, top_k, dim=-1)  # (B, k)
        pick = torch.multinomial(vals.softmax(-1), 1, generator=generator)  # (B, 1)
        return idx.gather(-1, pick).squeeze(-1)
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # keep the smallest set reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
