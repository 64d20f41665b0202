"""What a text classifier's tokenizer sees: PTB-style word forms and case folding, the same
for training, the tokenizer's sample, prediction and pseudo-labelled units."""

from __future__ import annotations

import re
from collections.abc import Sequence

from seqtool.data.conllu import simple_tokenize

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PTB_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}


def normalize_text(text: str) -> str:
    """Word forms as the PTB/UD tokenizers write them: `It's great.` -> `It 's great .`;
    `<br />` becomes a space and PTB bracket tokens (-lrb-) become brackets."""
    words = simple_tokenize(_BR.sub(" ", text))
    return " ".join(_PTB_BRACKETS.get(w.lower(), w) for w in words)


def prepare_texts(texts: Sequence[str], lowercase: bool, normalize: bool) -> list[str]:
    """What the tokenizer sees: the same for training, the tokenizer's sample and prediction."""
    out = [normalize_text(t) for t in texts] if normalize else list(texts)
    return [t.lower() for t in out] if lowercase else out
