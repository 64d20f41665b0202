"""One generic trainer for every task; features come as callbacks."""

from seqtool.training.trainer import BatchSource, Interrupted, Trainer

__all__ = ["BatchSource", "Interrupted", "Trainer"]
