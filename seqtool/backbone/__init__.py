"""The shared backbone: every task's model is this embedding + recurrent stack plus a small head."""

from seqtool.backbone.embedding import TokenEmbedding
from seqtool.backbone.recurrent import Backbone, Recurrent, State

__all__ = ["Backbone", "Recurrent", "State", "TokenEmbedding"]
