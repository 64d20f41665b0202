"""seqtool: recurrent sequence models over text, from the command line."""

import os

# oneDNN keeps a compiled CPU kernel per input shape (up to 1,024 by default); variable-length
# batches of a fused LSTM made that grow past 2.9 GB in a 35-minute classifier run. 64 keeps
# the reuse that matters at a fraction of the memory. A user's own setting wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

__version__ = "0.1.0"
