"""Labelled tables as a text classifier's data: label ids, token-id rows from the on-disk row
cache, the held-out split, batches, and the tokenizer learnt from the training texts.

`model` below is any classifier with `tokenizer`, `config` (lowercase, normalize, max_length,
ngrams), `labels` and `encode(texts)`: the functions read what they need from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqtool.data.batching import eval_batches, pad
from seqtool.data.normalize import prepare_texts
from seqtool.data.split import dev_count
from seqtool.data.tabular import LabelledTable, read_labelled
from seqtool.errors import DataError, SeqtoolError


@dataclass
class Encoded:
    """Token ids and label ids of a labelled set, ready for batching. `ids` is a list of id
    lists or, for tables read from files, `Rows` on disk (read as they are batched)."""

    ids: Sequence[Sequence[int]]
    labels: Sequence[int]
    # Probability each row's label should get (a teacher's score); None: all certain.
    scores: np.ndarray | None = None

    @property
    def lengths(self) -> Sequence[int]:
        return lengths_of(self.ids)


def lengths_of(ids: Sequence[Sequence[int]]) -> Sequence[int]:
    known = getattr(ids, "lengths", None)  # Rows hold theirs in memory
    return known if known is not None else [len(x) for x in ids]


def label_rows(labels: Sequence[str], probs: torch.Tensor) -> list[tuple[str, float, list[float]]]:
    """(label, its probability, all probabilities) per row of probs (N, C)."""
    best, top = probs.max(-1)
    return [
        (labels[int(j)], float(p), row)
        for j, p, row in zip(top.tolist(), best.tolist(), probs.tolist(), strict=True)
    ]


# -- head + tail truncation ----------------------------------------------------------------------


def truncate(ids: list[int], max_length: int) -> list[int]:
    """Keep the head quarter and the tail three quarters (a review's verdict is often at the end:
    Sun et al. 2019 found head+tail best for long texts)."""
    if max_length <= 0 or len(ids) <= max_length:
        return ids
    head = max_length // 4
    return ids[:head] + ids[len(ids) - (max_length - head) :]


def truncate_batch(
    ids: torch.Tensor, lengths: torch.Tensor, max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`truncate` on a padded batch: ids (B, T) -> (B, min(T, max_length)), same head + tail."""
    T = ids.size(1)
    if max_length <= 0 or max_length >= T:
        return ids, lengths
    head = max_length // 4
    pos = torch.arange(max_length, device=ids.device)[None, :]  # (1, M)
    shift = (lengths - max_length).clamp(min=0)[:, None]  # (B, 1): tokens cut from the middle
    idx = torch.where(pos < head, pos, pos + shift)  # (B, M); short rows keep their padding
    return ids.gather(1, idx), lengths.clamp(max=max_length)


# -- tables -> ids -------------------------------------------------------------------------------


@dataclass
class TrainingTables:
    """A classifier's training data as read: tables on disk, and the split of their rows."""

    tables: list[LabelledTable]
    classes: list[str]  # every label of the training tables, sorted
    dev: list[LabelledTable]  # --dev tables
    rows: np.ndarray  # training rows of the tables joined, in training order
    held: np.ndarray | None  # rows held out as dev (without dev tables)


def read_training(
    files: Sequence[str],
    dev: Sequence[str] | None,
    text_column: str,
    label_column: str,
    dev_fraction: float,
    seed: int,
) -> TrainingTables:
    """Read and check the training and dev tables; hold out dev rows when no dev table is
    given. A label column with one class only is an error."""
    if not files:
        raise SeqtoolError("give at least one training file")
    tables = [read_labelled(f, text_column, label_column) for f in files]
    classes = sorted({y for tb in tables for y in tb.label_names})
    if len(classes) < 2:
        where = ", ".join(dict.fromkeys(str(f) for f in files))
        raise SeqtoolError(
            f"{where}: label column {label_column!r} holds one class only ({classes[0]!r}); "
            "a classifier needs at least two"
        )
    dev_tables = [read_labelled(f, text_column, label_column) for f in dev or []]
    n = sum(len(tb) for tb in tables)
    rows, held = hold_out(n, 0 if dev_tables else dev_fraction, seed)
    return TrainingTables(tables, classes, dev_tables, rows, held)


def hold_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(training rows, held-out dev rows or None): a seeded random `fraction` of n rows (files
    are often sorted by label; data.split.dev_count sets the minimum), or every row for
    training when fraction is 0 or the data is too small for a dev set."""
    k = dev_count(n, fraction, "rows")  # at least enough to rank checkpoints, or none
    if k == 0:
        return np.arange(n, dtype=np.int64), None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return perm[k:], perm[:k]


def label_ids(model: Any, table: LabelledTable, unknown_ok: bool = False) -> np.ndarray:
    """Every row's label as the model's label id (int32 array); labels the model does not know
    are an error (or -1 when unknown_ok, which evaluation counts as wrong)."""
    index = {name: i for i, name in enumerate(model.labels)}
    lut = np.array([index.get(y, -1) for y in table.label_names], dtype=np.int32)
    if not unknown_ok and (lut < 0).any():
        y = table.label_names[int(np.flatnonzero(lut < 0)[0])]  # the first to appear
        raise DataError(
            f"label {y!r} is not one of the model's labels ({', '.join(model.labels)})",
            table.path,
        )
    return lut[table.codes]


def encode_table(model: Any, table: LabelledTable) -> Any:
    """Token ids of every row of a LabelledTable as `Rows`, from the on-disk row cache:
    tokenized a chunk at a time on first use, reused by any later run with the same file,
    tokenizer and options."""
    from seqtool.data import rows

    tok, cfg = model.tokenizer, model.config
    key = rows.cache_key(
        "classifier",
        table.content_hash(),
        table.fmt,
        table.text_column,
        tok.kind,
        tok.to_bytes(),
        f"lowercase={cfg.lowercase} max_length={0 if cfg.ngrams else cfg.max_length}"
        + (" normalize" if cfg.normalize else ""),
    )

    def build(writer: Any) -> None:
        for texts in table.iter_texts():
            writer.add(model.encode(texts))

    return rows.Rows([rows.cached(key, tok.vocab_size - 1, build)])


def encode_labelled(model: Any, table: LabelledTable, unknown_ok: bool = False) -> Encoded:
    """Encode a LabelledTable (see label_ids for unknown labels)."""
    return Encoded(encode_table(model, table), label_ids(model, table, unknown_ok))


def encode_training(model: Any, data: TrainingTables) -> tuple[Encoded, Encoded | None]:
    """(training rows, held-out rows or None) of the training tables joined in file order."""
    from seqtool.data.rows import Rows

    tables, train, held = data.tables, data.rows, data.held
    ids = Rows([encode_table(model, tb).stores[0] for tb in tables])  # all rows, in file order
    labels = np.concatenate([label_ids(model, tb, unknown_ok=True) for tb in tables])
    if (labels[train] < 0).any():  # resumed on labels the model was not built for
        for tb in tables:
            label_ids(model, tb)  # raises, naming the file and the label
    training = Encoded(ids.select(train), labels[train])
    return training, None if held is None else Encoded(ids.select(held), labels[held])


def dev_sets(model: Any, tables: list[LabelledTable]) -> list[tuple[str, Encoded]]:
    """Each dev table encoded, named by its file name without the extension."""
    names = set_names([tb.path for tb in tables])
    return [
        (n, encode_labelled(model, tb, unknown_ok=True))
        for n, tb in zip(names, tables, strict=True)
    ]


def set_names(paths: Sequence[str | Path]) -> list[str]:
    """Short distinct names for data files (the keys of per-set metrics): the file name
    without extension, or, where two share it, with it, then with the folder, then numbered."""
    keys = (lambda p: p.stem, lambda p: p.name, lambda p: f"{p.parent.name}/{p.name}")
    names: list[str] = []
    for key in keys:
        names = [key(Path(p)) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [f"{n}#{i}" for i, n in enumerate(names, 1)]


def predict_batches(
    ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, cap: int = 0
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(indices, ids (B, T), lengths (B,)) in length-sorted batches for prediction, of at most
    batch_size rows and about batch_size * 32 tokens (so a batch of long reviews stays
    cache-sized). cap: the length a row costs at most (a model that cuts its rows)."""
    lengths = lengths_of(ids)
    if cap:
        lengths = np.minimum(np.asarray(lengths), cap)
    max_tokens = max(batch_size * 32, int(max(lengths, default=1)))
    for idx in eval_batches(lengths, batch_size, max_tokens):
        x, lens = pad([ids[i] for i in idx], pad_id)
        yield idx, x, lens


def collate(data: Encoded, pad_id: int) -> Callable[[list[int]], dict[str, torch.Tensor]]:
    """Example indices -> a padded batch: ids (B, T), lengths, labels [, scores] (B,)."""
    labels = torch.as_tensor(np.asarray(data.labels))
    scores = None if data.scores is None else torch.as_tensor(data.scores, dtype=torch.float32)

    def make(idx: list[int]) -> dict[str, torch.Tensor]:
        ids, lengths = pad([data.ids[i] for i in idx], pad_id)
        batch = {"ids": ids, "lengths": lengths, "labels": labels[idx].long()}
        if scores is not None:
            batch["scores"] = scores[idx]  # (B,)
        return batch

    return make


# -- the tokenizer -------------------------------------------------------------------------------


def build_tokenizer(
    spec: str,
    tables: list[LabelledTable],
    rows: np.ndarray,
    lowercase: bool,
    vocab_size: int,
    sample: int,
    normalize: bool = False,
) -> Any:
    """A tokenizer from --tokenizer: trained on the texts of `rows` (the training rows, in
    training order) or loaded from a file. Characters come from every row, streamed;
    sentencepiece learns from every row too when they hold at most `sample` characters
    (0: no limit), else from every k-th row (in training order: a random spread when a dev
    set was held out), so its memory stays bounded."""
    from seqtool import tokenizers
    from seqtool.tokenizers import CharTokenizer

    if spec not in tokenizers.SPECS:
        return tokenizers.build(spec, [], vocab_size)
    want = np.zeros(sum(len(tb) for tb in tables), dtype=bool)
    want[rows] = True
    if spec == "char":  # no sample needed: a set of characters is small
        chars: set[str] = set()
        for start, texts in _iter_all_texts(tables):
            keep = want[start : start + len(texts)].tolist()
            # Lowercased one text at a time, as encode does (a final sigma depends on context).
            kept = (t for t, k in zip(texts, keep, strict=True) if k)
            chars.update("".join(prepare_texts(list(kept), lowercase, normalize)))
        return CharTokenizer(chars)
    total = sum(tb.chars for tb in tables)
    stride = max(1, -(-total // sample)) if sample > 0 else 1
    texts = _gather_texts(tables, rows[::stride])
    return tokenizers.build(spec, prepare_texts(texts, lowercase, normalize), vocab_size)


def _iter_all_texts(tables: list[LabelledTable]) -> Iterator[tuple[int, list[str]]]:
    """(first row, texts) chunks over the tables joined in order."""
    start = 0
    for tb in tables:
        for texts in tb.iter_texts():
            yield start, texts
            start += len(texts)


def _gather_texts(tables: list[LabelledTable], rows: np.ndarray) -> list[str]:
    """The texts of `rows` (over the tables joined), in that order, in one streamed pass."""
    where = np.full(sum(len(tb) for tb in tables), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    out: list[str] = [""] * len(rows)
    for start, texts in _iter_all_texts(tables):
        pos = where[start : start + len(texts)]
        for k in np.flatnonzero(pos >= 0).tolist():
            out[pos[k]] = texts[k]
    return out
