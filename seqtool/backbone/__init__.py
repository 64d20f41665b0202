"""The shared backbone: every task's model is this encoder (plus, for the translator, this
decoder) and a small head. Nothing outside this package builds a recurrent stack."""

from seqtool.backbone.charword import CharWordEncoder
from seqtool.backbone.decoder import Decoder
from seqtool.backbone.embedding import TokenEmbedding
from seqtool.backbone.encoder import POOLS, Backbone, Encoder
from seqtool.backbone.recurrent import Recurrent, State

__all__ = [
    "POOLS",
    "Backbone",
    "CharWordEncoder",
    "Decoder",
    "Encoder",
    "Recurrent",
    "State",
    "TokenEmbedding",
]
