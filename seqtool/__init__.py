"""seqtool: recurrent sequence models over text, from the command line."""

__version__ = "0.1.0"
