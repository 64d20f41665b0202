"""How many items (rows, sentences, pairs, paragraphs) a run holds out as its dev set when no
--dev file is given: enough to rank checkpoints, or none and a warning that says so."""

from __future__ import annotations

from seqtool import notices
from seqtool.errors import SeqtoolError

# Fewer held-out items cannot rank checkpoints: on 20 rows accuracy moves in steps of 5 %.
MIN_DEV = 20
# The minimum is reached by holding out at most this share of the data; smaller data keeps
# every item for training instead.
MAX_DEV_SHARE = 0.25


def dev_count(n: int, fraction: float, unit: str = "rows") -> int:
    """Items of n to hold out for --dev-fraction `fraction` (0: none): the fraction, raised to
    MIN_DEV where that still leaves 3/4 for training. Data too small for MIN_DEV holds out
    none, with a warning: the run then trains on everything and keeps its last model, which
    beats a "best" picked on a handful of items."""
    if fraction <= 0:
        return 0
    if not 0 < fraction < 1:
        raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {fraction}")
    k = int(n * fraction)
    if k >= MIN_DEV:
        return k
    if n * MAX_DEV_SHARE >= MIN_DEV:
        return MIN_DEV
    notices.warn(
        f"{n} {unit} are too few to hold out a dev set that can rank checkpoints "
        f"({MIN_DEV} {unit}, at most a quarter of them): training on all of them and saving "
        "the last model; give --dev FILE to pick the best by a dev score"
    )
    return 0
