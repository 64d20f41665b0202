"""Pseudo-labelling (`seqtool pseudo-label`): documents cut into sentences, each labelled by a
teacher (one classifier or an averaged ensemble), kept when the teacher is confident and
agrees with its document's label. Sentence-level training data from document-level labels."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from seqtool.data.labelled import label_rows
from seqtool.data.normalize import prepare_texts
from seqtool.errors import SeqtoolError

# A sentence ends at . ! or ? (closing quotes/brackets kept with it) before whitespace and a
# capital, digit or opening quote; an HTML line break or a newline always ends one.
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])|(?i:<br\s*/?>)|\n+")


def split_sentences(text: str) -> list[str]:
    """`It was great. I loved it!<br />Go.` -> ['It was great.', 'I loved it!', 'Go.']."""
    parts = _SENTENCE_END.split(text)
    # split() interleaves the captured closing marks: glue each back onto its sentence.
    out: list[str] = []
    for i in range(0, len(parts), 2):
        s = parts[i] + (parts[i + 1] or "" if i + 1 < len(parts) else "")
        if s.strip():
            out.append(s.strip())
    return out


class Ensemble:
    """Several classifiers with the same labels as one teacher: their class probabilities
    averaged (each reads the text with its own tokenizer and options)."""

    def __init__(self, models: Sequence[Any]) -> None:
        if not models:
            raise SeqtoolError("an ensemble needs at least one model")
        self.models = list(models)
        self.labels = self.models[0].labels
        for m in self.models[1:]:
            if m.labels != self.labels:
                raise SeqtoolError(
                    f"the teachers' labels differ: {', '.join(self.labels)} vs "
                    f"{', '.join(m.labels)}"
                )

    def predict(
        self, texts: Sequence[str], batch_size: int = 256
    ) -> list[tuple[str, float, list[float]]]:
        probs = torch.stack([m.predict_ids(m.encode(texts), batch_size) for m in self.models])
        return label_rows(self.labels, probs.mean(0))  # (N, C) averaged


@dataclass
class PseudoLabelStats:
    documents: int = 0
    units: int = 0  # sentences (or whole texts) within the word limits
    agreed: int = 0  # units whose predicted label equals their document's label
    kept: dict[str, int] = field(default_factory=dict)  # label -> units written


def pseudo_label(
    model: Any,
    texts: Sequence[str],
    doc_labels: Sequence[str] | None,
    stats: PseudoLabelStats,
    *,
    sentences: bool = True,
    min_score: float = 0.9,
    min_words: int = 4,
    max_words: int = 60,
    normalize: bool = False,
    lowercase: bool = False,
    batch_size: int = 256,
    veto: bool = True,
) -> list[tuple[str, str, float]]:
    """(text, label, score) training rows from documents, labelled by `model` (the teacher:
    a Classifier or an Ensemble, anything with predict(texts, batch_size)).

    Each document is cut into sentences (or kept whole), each unit of min_words..max_words
    words is labelled, and a unit is kept when the teacher's score is at least min_score
    and, where the document has a label, the teacher agrees with it (unless not veto):
    sentence-level data from document-level labels, with the teacher filtering out the
    neutral sentences."""
    cut = [split_sentences(t) if sentences else [t.strip()] for t in texts]
    flat = prepare_texts([u for c in cut for u in c], lowercase, normalize)
    doc = [d for d, c in enumerate(cut) for _ in c]
    limit = max(min_words, max_words or 10**9)
    keep = [i for i, u in enumerate(flat) if min_words <= len(u.split()) <= limit]
    units = [flat[i] for i in keep]
    owner = [doc[i] for i in keep]
    stats.documents += len(texts)
    stats.units += len(units)
    out: list[tuple[str, str, float]] = []
    if not units:
        return out
    for s, d, (label, score, _) in zip(units, owner, model.predict(units, batch_size), strict=True):
        if doc_labels is not None:
            agrees = label == doc_labels[d]
            stats.agreed += agrees
            if veto and not agrees:
                continue
        if score >= min_score:
            out.append((s, label, score))
            stats.kept[label] = stats.kept.get(label, 0) + 1
    return out
