"""Tagger data: word keys, the one batch builder, windows for very long sentences, gold data
for evaluation, and the streamed CoNLL-U training corpus with its row cache.

A batch is built in one place (`collate`) from per-sentence form ids, whether the forms come
from words (`encode_words`: inference, tests, inspection) or from the row cache (training):
each distinct form of the batch is numbered in order of first appearance and read by the char
encoder once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqtool.data.batching import eval_batches, pad
from seqtool.data.conllu import Sentence, check_tag_field, read_conllu, read_conllu_file
from seqtool.errors import SeqtoolError

PAD, UNK = 0, 1
IGNORE = -100  # tag id of padding and of words without a gold tag ('_')
MAX_WORD_CHARS = 32  # longer words keep their first and last 16 characters
MAX_SEGMENT = 2000  # longer sentences are tagged in windows of this many words
CONTEXT = 100  # words of context on each side of a window's kept part
_DIGITS = re.compile(r"\d")


def normalize(word: str) -> str:
    """The word-embedding key: lowercased, every digit folded to 0."""
    return _DIGITS.sub("0", word.lower())


def clip_word(word: str) -> str:
    if len(word) <= MAX_WORD_CHARS:
        return word
    half = MAX_WORD_CHARS // 2
    return word[:half] + word[-half:]


def windows(n: int, size: int = MAX_SEGMENT, context: int = CONTEXT) -> list[tuple[int, ...]]:
    """(start, end, keep_start, keep_end) windows covering n words; kept parts tile [0, n)."""
    if n <= size:
        return [(0, n, 0, n)]
    step = size - 2 * context
    return [
        (max(0, k - context), min(n, k + step + context), k, min(n, k + step))
        for k in range(0, n, step)
    ]


# -- batches ----------------------------------------------------------------------------------


def collate(
    forms: Sequence[np.ndarray],
    form_words: np.ndarray,
    form_chars: Callable[[int], Sequence[int]],
    tags: Sequence[Sequence[int]] | None = None,
) -> dict[str, torch.Tensor]:
    """The model's input tensors for a batch of sentences given as form ids (int arrays):
    form_words[f] is form f's word id, form_chars(f) its char ids. Distinct forms are numbered
    in order of first appearance, 1-based (0: the padding row)."""
    types: dict[int, int] = {}
    type_ids = [[types.setdefault(f, len(types) + 1) for f in s.tolist()] for s in forms]
    words, lengths = pad([form_words[s] for s in forms], PAD)
    word_types, _ = pad(type_ids, 0)
    chars, char_lengths = pad([form_chars(f) for f in types], PAD)
    batch = {
        "words": words,  # (B, T)
        "lengths": lengths,  # (B,)
        "word_types": word_types,  # (B, T) index into the U distinct forms, 1-based
        "chars": chars,  # (U, L)
        "char_lengths": char_lengths,  # (U,)
    }
    if tags is not None:
        batch["tags"] = pad(tags, IGNORE)[0]  # (B, T)
    return batch


def encode_words(
    sentences: Sequence[Sequence[str]], word_index: dict[str, int], tokenizer: Any
) -> dict[str, torch.Tensor]:
    """`collate` for sentences of words: forms numbered within the batch."""
    forms: dict[str, int] = {}
    ids = [np.array([forms.setdefault(w, len(forms)) for w in s], np.int64) for s in sentences]
    get = word_index.get
    form_words = np.array([get(normalize(f), UNK) for f in forms], np.int64)
    chars = tokenizer.encode([clip_word(f) for f in forms])
    return collate(ids, form_words, chars.__getitem__)


def window_batches(
    sentences: Sequence[Sequence[str]], word_index: dict[str, int], batch_size: int, max_tokens: int
) -> tuple[list[str], list[int], Iterator[tuple[torch.Tensor, torch.Tensor, list]]]:
    """Tagging work for sentences of words: the distinct forms, their word ids (row 0 is
    padding), and length-sorted batches of windows covering every word, each as (form rows
    (B, T), 1-based; lengths (B,); per row (sentence, window start, keep start, keep end))."""
    forms: dict[str, int] = {}  # form -> 1-based row; 0 is padding
    types = [[forms.setdefault(w, len(forms) + 1) for w in s] for s in sentences]
    get = word_index.get
    word_of = [PAD] + [get(normalize(f), UNK) for f in forms]
    jobs = [(i, *w) for i, s in enumerate(sentences) if s for w in windows(len(s))]

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, list]]:
        for idx in eval_batches([j[2] - j[1] for j in jobs], batch_size, max_tokens):
            word_types, lengths = pad([types[jobs[j][0]][jobs[j][1] : jobs[j][2]] for j in idx])
            yield word_types, lengths, [(jobs[j][0], jobs[j][1], *jobs[j][3:]) for j in idx]

    return list(forms), word_of, batches()


def form_vectors(
    encoder: Any, tokenizer: Any, forms: list[str], device: torch.device, batch: int = 1024
) -> torch.Tensor:
    """The char encoder's vectors (U, C) for U distinct forms, each read once, in
    length-sorted batches (a form's vector does not depend on its context)."""
    ids = tokenizer.encode([clip_word(f) for f in forms])
    order = sorted(range(len(forms)), key=lambda i: len(ids[i]))
    out = torch.zeros(len(forms), encoder.chars.output_size, device=device)
    for k in range(0, len(order), batch):
        rows = order[k : k + batch]
        chars, lengths = pad([ids[i] for i in rows], PAD)
        vec = encoder.char_vectors(chars.to(device), lengths)  # (b, C)
        out[torch.tensor(rows, device=device)] = vec.to(out.dtype)
    return out


def chunked(
    sentences: Iterable[Sentence], max_sentences: int, max_tokens: int
) -> Iterator[list[Sentence]]:
    """Consecutive chunks of sentences, closed at either bound, so output streams."""
    chunk: list[Sentence] = []
    tokens = 0
    for s in sentences:
        chunk.append(s)
        tokens += len(s.words)
        if len(chunk) >= max_sentences or tokens >= max_tokens:
            yield chunk
            chunk, tokens = [], 0
    if chunk:
        yield chunk


# -- evaluation data --------------------------------------------------------------------------


@dataclass
class TagData:
    """Sentences with gold tag ids, ready for evaluation."""

    words: list[list[str]]
    gold: list[list[int]]  # IGNORE for '_' ; -1 for a tag the model does not know
    oov: list[list[bool]]  # word unseen in training
    gold_names: list[list[str | None]]
    per_tag: bool = False  # `seqtool eval`: add per-tag scores, leave out an undefined OOV score

    def compare(self, pred: list[list[int]], names: list[str]) -> list[tuple[bool, bool, str, str]]:
        """(correct, unseen word, predicted tag, gold tag) of every word with a gold tag."""
        return [
            (p == g, o, names[p], name)
            for p_s, g_s, o_s, n_s in zip(pred, self.gold, self.oov, self.gold_names, strict=True)
            for p, g, o, name in zip(p_s, g_s, o_s, n_s, strict=True)
            if g != IGNORE
        ]


def tag_data(
    sentences: Iterable[Sentence],
    word_index: dict[str, int],
    tag_index: dict[str, int],
    per_tag: bool = False,
) -> TagData:
    data = TagData([], [], [], [], per_tag)
    for s in sentences:
        if not s.words:
            continue
        gold = s.tags or [None] * len(s.words)
        data.words.append(s.words)
        data.gold_names.append(gold)
        data.gold.append([IGNORE if t is None else tag_index.get(t, -1) for t in gold])
        data.oov.append([normalize(w) not in word_index for w in s.words])
    return data


def unk_probs(words: Sequence[str], counts: Counter[str], alpha: float) -> torch.Tensor:
    """Word dropout: P(word id -> <unk>) = alpha / (alpha + training count); 0 for <pad>, <unk>."""
    c = np.array([counts.get(w, 0) for w in words], dtype=np.float64)
    p = alpha / (alpha + c) if alpha > 0 else np.zeros_like(c)
    p[: UNK + 1] = 0.0
    return torch.from_numpy(p).float()


def eval_sentences(
    path: str, trained: str, tag_field: str | None, encoding_errors: str
) -> list[Sentence]:
    """A held-out CoNLL-U file for a model trained on the `trained` tag field."""
    if tag_field is not None and tag_field != trained:
        check_tag_field(tag_field)
        raise SeqtoolError(
            f"this model tags {trained}; it cannot be evaluated on --tag-field {tag_field}"
        )
    return read_sentences(path, trained, encoding_errors)


def read_sentences(path: str, tag_field: str, encoding_errors: str) -> list[Sentence]:
    sents = list(read_conllu_file(path, tag_field, encoding_errors))
    if not sents:
        raise SeqtoolError(f"{path}: no sentences (empty CoNLL-U file?)")
    return sents


# -- training corpus --------------------------------------------------------------------------


@contextlib.contextmanager
def training_corpus(files: list[str], tag_field: str, encoding_errors: str):
    """The training files as a `TaggedCorpus`; stdin is spooled to a temp file for the
    corpus's several passes, removed on leaving."""
    from seqtool.data.corpus import spool_stdin

    if not files:
        raise SeqtoolError("give at least one training CoNLL-U file (or - for stdin)")
    given = list(files)
    paths, spooled = spool_stdin(given)
    try:
        yield TaggedCorpus(paths, given, tag_field, encoding_errors)
    finally:
        if spooled:
            os.unlink(spooled)


class TaggedCorpus:
    """Training CoNLL-U files, streamed. One pass at construction checks them and keeps the
    sentence lengths (int32) and counts of normalized words, tags and characters; the
    sentences are read again when needed (a held-out tail, the row cache on first use), so
    memory holds the vocabularies and a few numbers per sentence, not the sentences."""

    def __init__(
        self, files: list[str], names: list[str], tag_field: str, encoding_errors: str
    ) -> None:
        self.files, self.names = files, names
        self.tag_field, self.encoding_errors = tag_field, encoding_errors
        self.words: Counter[str] = Counter()
        self.tag_counts: Counter[str] = Counter()
        self.char_counts: Counter[str] = Counter()
        lengths: list[int] = []
        for k in range(len(files)):
            before = len(lengths)
            for s in self._read(k):
                lengths.append(len(s.words))
                self._count(s, 1)
            if len(lengths) == before:
                raise SeqtoolError(f"{names[k]}: no sentences (empty CoNLL-U file?)")
        self.lengths = np.array(lengths, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def tags(self) -> list[str]:
        return [t for t, c in self.tag_counts.items() if c > 0]

    @property
    def chars(self) -> list[str]:
        return [ch for ch, c in self.char_counts.items() if c > 0]

    def _read(self, k: int) -> Iterator[Sentence]:
        from seqtool.data.text import display_name, iter_lines

        name = display_name(self.names[k])
        lines = iter_lines(self.files[k], self.encoding_errors)
        return read_conllu(lines, name, self.tag_field)

    def sentences(self) -> Iterator[Sentence]:
        for k in range(len(self.files)):
            yield from self._read(k)

    def _count(self, s: Sentence, sign: int) -> None:
        add = Counter.update if sign > 0 else Counter.subtract
        add(self.words, map(normalize, s.words))
        add(self.tag_counts, [t for t in s.tags or [] if t is not None])
        add(self.char_counts, "".join(s.words))

    def vocabularies(self) -> tuple[list[str], list[str], Any]:
        """Words (<pad>, <unk>, then by count), tags (sorted) and a char tokenizer."""
        from seqtool.tokenizers import CharTokenizer

        tags = sorted(self.tags)
        if not tags:
            raise SeqtoolError(f"no {self.tag_field} tags in the training data (column all '_')")
        words = ["<pad>", "<unk>"] + sorted(self.words, key=lambda w: (-self.words[w], w))
        return words, tags, CharTokenizer.train(["".join(self.chars)])

    def split_dev(self, dev: str | None, dev_fraction: float) -> tuple[int, list[Sentence] | None]:
        """(training sentences n, dev sentences): the --dev file, else a held-out tail (the
        counts are then those of the first n), else none."""
        if dev is not None:
            return len(self), read_sentences(dev, self.tag_field, self.encoding_errors)
        from seqtool.data.split import dev_count

        k = dev_count(len(self), dev_fraction, "sentences")  # enough to rank checkpoints, or 0
        if k == 0:
            return len(self), None
        n = len(self) - k
        tail = [s for i, s in enumerate(self.sentences()) if i >= n]
        for s in tail:
            self._count(s, -1)
        self.words = +self.words  # drop words seen only in the tail
        return n, tail

    def collate(self, words: list[str], tags: list[str], tokenizer: Any, n: int) -> CacheCollate:
        """Batches of the first n sentences, drawn from the row cache: per sentence its forms
        (ids of distinct original forms, in order of first appearance) and tag ids; per form
        its char ids and word id. Built in one pass on first use."""
        from seqtool.data import rows

        key = rows.cache_key(
            "tagger",
            rows.cache_key(self.tag_field, self.encoding_errors, rows.file_hash(self.files)),
            str(n),
            json.dumps([words, tags]),
            tokenizer.to_bytes(),
        )
        word_index = {w: i for i, w in enumerate(words)}
        tag_id = {t: i for i, t in enumerate(tags)}.get

        def build(out: dict[str, rows.RowWriter]) -> None:
            forms: dict[str, int] = {}
            f_rows: list[list[int]] = []
            t_rows: list[list[int]] = []
            for i, s in enumerate(self.sentences()):
                if i >= n:
                    break
                f_rows.append([forms.setdefault(w, len(forms)) for w in s.words])
                t_rows.append([IGNORE if t is None else tag_id(t, IGNORE) for t in s.tags or []])
                if len(f_rows) >= 4096:
                    out["forms"].add(f_rows)
                    out["tags"].add(t_rows)
                    f_rows, t_rows = [], []
            out["forms"].add(f_rows)
            out["tags"].add(t_rows)
            out["form_words"].add([[word_index.get(normalize(f), UNK) for f in forms]])
            names = list(forms)
            for k in range(0, len(names), 4096):
                out["form_chars"].add(tokenizer.encode([clip_word(f) for f in names[k : k + 4096]]))

        big = 1 << 31
        max_ids = {"forms": big, "tags": len(tags), "form_words": big, "form_chars": big}
        parts = rows.cached_parts(key, max_ids, build)
        return CacheCollate(
            rows.Rows([parts["forms"]]),
            rows.Rows([parts["tags"]]),
            parts["form_words"].row(0).astype(np.int64),
            parts["form_chars"],
        )


class CacheCollate:
    """Training batches (with tags) by sentence index, from the row cache."""

    def __init__(self, forms: Any, tags: Any, form_words: np.ndarray, form_chars: Any) -> None:
        self.forms, self.tags = forms, tags
        self.form_words, self.form_chars = form_words, form_chars

    def __call__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        forms = [self.forms[i] for i in idx]
        tags = [self.tags[i] for i in idx]
        return collate(forms, self.form_words, self.form_chars.row, tags)
