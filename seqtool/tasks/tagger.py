"""Part-of-speech tagger: [word embedding; char features] -> bidirectional backbone -> linear
head per token. Many-to-many with equal lengths.

Words are looked up lowercased with digits folded to 0; the char encoder sees the original
form (case, suffixes), so unseen words are still tagged well. In training, a word seen c
times is replaced by <unk> with probability alpha / (alpha + c) (word dropout), which
trains the <unk> row and teaches the model to lean on characters for rare words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone import CharWordEncoder, Recurrent, TokenEmbedding
from seqtool.config import BackboneConfig, _Config
from seqtool.data.batching import BucketedSource, eval_batches, pad
from seqtool.data.conllu import Sentence, check_tag_field
from seqtool.errors import ConfigError, SeqtoolError
from seqtool.tasks.base import ModuleTask

PAD, UNK = 0, 1
IGNORE = -100  # tag id of padding and of words without a gold tag ('_')
MAX_WORD_CHARS = 32  # longer words keep their first and last 16 characters
_DIGITS = re.compile(r"\d")


def normalize(word: str) -> str:
    """The word-embedding key: lowercased, every digit folded to 0."""
    return _DIGITS.sub("0", word.lower())


def clip_word(word: str) -> str:
    if len(word) <= MAX_WORD_CHARS:
        return word
    half = MAX_WORD_CHARS // 2
    return word[:half] + word[-half:]


MAX_SEGMENT = 2000  # longer sentences are tagged in windows of this many words
CONTEXT = 100  # words of context on each side of a window's kept part


def windows(n: int, size: int = MAX_SEGMENT, context: int = CONTEXT) -> list[tuple[int, ...]]:
    """(start, end, keep_start, keep_end) windows covering n words; kept parts tile [0, n)."""
    if n <= size:
        return [(0, n, 0, n)]
    step = size - 2 * context
    return [
        (max(0, k - context), min(n, k + step + context), k, min(n, k + step))
        for k in range(0, n, step)
    ]


@dataclass(frozen=True)
class TaggerConfig(_Config):
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(vocab_size=2))
    num_tags: int = 1
    tag_field: str = "upos"
    char_vocab_size: int = 5
    char_dim: int = 32
    char_hidden: int = 64
    word_dropout: float = 0.25  # alpha of the alpha / (alpha + count) <unk> replacement

    def __post_init__(self) -> None:
        if self.tag_field not in ("upos", "xpos"):
            raise ConfigError(f"tag_field must be upos or xpos, not {self.tag_field!r}")
        if self.num_tags < 1 or self.char_dim < 1 or self.char_hidden < 1:
            raise ConfigError("num_tags, char_dim and char_hidden must be >= 1")
        if self.word_dropout < 0:
            raise ConfigError(f"word_dropout must be >= 0, not {self.word_dropout}")


@dataclass
class TagData:
    """Sentences with gold tag ids, ready for evaluation."""

    words: list[list[str]]
    gold: list[list[int]]  # IGNORE for '_' ; -1 for a tag the model does not know
    oov: list[list[bool]]  # word unseen in training
    gold_names: list[list[str | None]]


class Tagger(ModuleTask):
    task = "tagger"
    shipped_model = "pos-en.safetensors"
    config_class = TaggerConfig
    main_metric = "accuracy"
    higher_is_better = True

    def __init__(
        self, config: TaggerConfig, tokenizer, words: Sequence[str], tags: Sequence[str]
    ) -> None:
        super().__init__(config, tokenizer)
        bb = config.backbone
        self.words = list(words)  # id -> normalized word; 0 <pad>, 1 <unk>
        self.tags = list(tags)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.word_embed = TokenEmbedding(bb.vocab_size, bb.embedding_dim, padding_idx=PAD)
        self.char_encoder = CharWordEncoder(
            config.char_vocab_size, config.char_dim, config.char_hidden, bb.cell
        )
        self.input_dropout = nn.Dropout(bb.embedding_dropout)
        self.rnn = Recurrent(
            bb.embedding_dim + self.char_encoder.output_size,
            bb.hidden_size,
            bb.layers,
            bb.cell,
            bb.bidirectional,
            bb.dropout,
            weight_dropout=bb.weight_dropout,
        )
        self.dropout = nn.Dropout(bb.dropout)
        self.head = nn.Linear(self.rnn.output_size, config.num_tags)
        # P(word -> <unk>) in training; set by `prepare` from training counts, not saved.
        self.register_buffer("unk_prob", torch.zeros(bb.vocab_size), persistent=False)

    # -- checkpoint ---------------------------------------------------------------------------

    def extra_metadata(self) -> dict[str, Any]:
        return {"words": self.words, "tags": self.tags}

    @classmethod
    def from_parts(cls, config: TaggerConfig, tokenizer, extra: dict[str, Any]) -> Self:
        words, tags = extra.get("words"), extra.get("tags")
        if not isinstance(words, list) or not isinstance(tags, list):
            from seqtool.errors import CheckpointError

            raise CheckpointError("tagger checkpoint lacks its word or tag vocabulary")
        return cls(config, tokenizer, words, tags)

    # -- model --------------------------------------------------------------------------------

    def encode(self, sentences: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Words of a batch -> the model's input tensors. Each distinct form is read by the
        char encoder once per batch."""
        types: dict[str, int] = {}
        word_ids, type_ids = [], []
        get = self.word_index.get
        for s in sentences:
            word_ids.append([get(normalize(w), UNK) for w in s])
            type_ids.append([types.setdefault(w, len(types) + 1) for w in s])  # 0: padding row
        words, lengths = pad(word_ids, PAD)
        word_types, _ = pad(type_ids, 0)
        chars, char_lengths = pad(self.tokenizer.encode([clip_word(w) for w in types]), PAD)
        return {
            "words": words,  # (B, T)
            "lengths": lengths,  # (B,)
            "word_types": word_types,  # (B, T) index into the U distinct forms, 1-based
            "chars": chars,  # (U, L)
            "char_lengths": char_lengths,  # (U,)
        }

    def forward(
        self,
        words: torch.Tensor,
        lengths: torch.Tensor,
        word_types: torch.Tensor,
        chars: torch.Tensor,
        char_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """-> tag logits (B, T, K); positions past a sentence's length are meaningless."""
        c = self.char_encoder(chars, char_lengths)  # (U, C)
        return self.scores(words, lengths, word_types, c)

    def scores(
        self,
        words: torch.Tensor,
        lengths: torch.Tensor,
        word_types: torch.Tensor,
        char_vectors: torch.Tensor,
    ) -> torch.Tensor:
        """Tag logits (B, T, K) given the char encoder's vectors (U, C) of the distinct forms
        that word_types (B, T) points at, 1-based."""
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.unk_prob[words]
            words = words.masked_fill(drop, UNK)
        w = self.word_embed(words)  # (B, T, E)
        c = char_vectors
        c = torch.cat([c.new_zeros(1, c.size(1)), c])[word_types]  # (B, T, C)
        x = self.input_dropout(torch.cat([w, c], dim=-1))  # (B, T, E + C)
        h = self.run_rnn(x, lengths)  # (B, T, D*H)
        return self.head(self.dropout(h))  # (B, T, K)

    @torch.no_grad()
    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        """For `seqtool inspect`: words, [word embedding; char features] (1, T, E + C) and the
        bidirectional Recurrent they feed (see TaskModel.inspect_inputs)."""
        words = text.split()
        if not words:
            raise SeqtoolError("nothing to inspect: the text has no words")
        b = self.encode([words])
        w = self.word_embed(b["words"])  # (1, T, E)
        c = self.char_encoder(b["chars"], b["char_lengths"])  # (U, C)
        c = torch.cat([c.new_zeros(1, c.size(1)), c])[b["word_types"]]  # (1, T, C)
        return words, torch.cat([w, c], dim=-1), self.rnn

    def run_rnn(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The backbone over a padded batch: x (B, T, F) -> (B, T, D*H), zero past each length."""
        return self.rnn(x, lengths)[0]

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        tags = batch["tags"]
        logits = self(**{k: v for k, v in batch.items() if k != "tags"})
        loss = F.cross_entropy(logits.float().flatten(0, 1), tags.flatten(), ignore_index=IGNORE)
        return loss, int((tags != IGNORE).sum())

    @torch.inference_mode()
    def predict_ids(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 64, max_tokens: int = 4096
    ) -> list[list[int]]:
        """Tag ids per word, in input order; batches are length-sorted internally.

        Each distinct form in `sentences` is looked up and read by the char encoder once
        (its vector does not depend on context). A sentence longer than MAX_SEGMENT is tagged
        in overlapping windows, so memory stays bounded whatever the input (each kept tag
        still sees CONTEXT words on both sides)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        forms: dict[str, int] = {}  # form -> 1-based row; 0 is padding
        types = [[forms.setdefault(w, len(forms) + 1) for w in s] for s in sentences]
        get = self.word_index.get
        word_of = torch.tensor([PAD] + [get(normalize(f), UNK) for f in forms], device=device)
        char_vectors = self.char_vectors(list(forms), device)  # (U, C)
        out: list[list[int]] = [[0] * len(s) for s in sentences]
        jobs = [  # (sentence, window start, window end, keep start, keep end)
            (i, *w) for i, s in enumerate(sentences) if s for w in windows(len(s))
        ]
        for idx in eval_batches([j[2] - j[1] for j in jobs], batch_size, max_tokens):
            word_types, lengths = pad([types[jobs[j][0]][jobs[j][1] : jobs[j][2]] for j in idx])
            word_types = word_types.to(device)  # (B, T)
            logits = self.scores(word_of[word_types], lengths, word_types, char_vectors)
            best = logits.argmax(-1).cpu()  # (B, T)
            for row, j in enumerate(idx):
                i, start, _, keep0, keep1 = jobs[j]
                out[i][keep0:keep1] = best[row, keep0 - start : keep1 - start].tolist()
        if was_training:
            self.train()
        return out

    def char_vectors(self, forms: list[str], device: torch.device, batch: int = 1024):
        """The char encoder's vectors (U, C) for U forms, read in length-sorted batches."""
        ids = self.tokenizer.encode([clip_word(f) for f in forms])
        order = sorted(range(len(forms)), key=lambda i: len(ids[i]))
        out = torch.zeros(len(forms), self.char_encoder.output_size, device=device)
        for k in range(0, len(order), batch):
            rows = order[k : k + batch]
            chars, lengths = pad([ids[i] for i in rows], PAD)
            vec = self.char_encoder(chars.to(device), lengths)  # (b, C)
            out[torch.tensor(rows, device=device)] = vec.to(out.dtype)
        return out

    def predict(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 64, max_tokens: int = 4096
    ) -> list[list[str]]:
        """Tags (strings) per word for a list of tokenized sentences."""
        names = self.tags
        return [[names[t] for t in s] for s in self.predict_ids(sentences, batch_size, max_tokens)]

    # -- evaluation ---------------------------------------------------------------------------

    def tag_data(self, sentences: Iterable[Sentence]) -> TagData:
        data = TagData([], [], [], [])
        for s in sentences:
            if not s.words:
                continue
            gold = s.tags or [None] * len(s.words)
            data.words.append(s.words)
            data.gold_names.append(gold)
            data.gold.append([IGNORE if t is None else self.tag_index.get(t, -1) for t in gold])
            data.oov.append([normalize(w) not in self.word_index for w in s.words])
        return data

    @torch.no_grad()
    def evaluate(self, data: TagData, per_tag: bool = False) -> dict[str, Any]:
        """Token accuracy, accuracy on words unseen in training, and (per_tag) P/R/F1."""
        pred = self.predict_ids(data.words)
        n = correct = n_oov = correct_oov = 0
        tp: Counter[str] = Counter()
        n_pred: Counter[str] = Counter()
        n_gold: Counter[str] = Counter()
        for p_s, g_s, o_s, names in zip(pred, data.gold, data.oov, data.gold_names, strict=True):
            for p, g, o, name in zip(p_s, g_s, o_s, names, strict=True):
                if g == IGNORE:
                    continue
                ok = p == g
                n += 1
                correct += ok
                if o:
                    n_oov += 1
                    correct_oov += ok
                if per_tag:
                    n_pred[self.tags[p]] += 1
                    n_gold[name] += 1
                    tp[name] += ok
        if n == 0:
            raise SeqtoolError("no gold tags to evaluate against (is the tag column all '_'?)")
        metrics: dict[str, Any] = {
            "accuracy": correct / n,
            "oov_accuracy": correct_oov / n_oov if n_oov else float("nan"),
            "tokens": n,
            "oov_tokens": n_oov,
        }
        if per_tag:
            table = {}
            for t in sorted(set(n_gold) | set(n_pred)):
                prec = tp[t] / n_pred[t] if n_pred[t] else 0.0
                rec = tp[t] / n_gold[t] if n_gold[t] else 0.0
                f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
                table[t] = {"precision": prec, "recall": rec, "f1": f1, "support": n_gold[t]}
            metrics["per_tag"] = table
        return metrics


# -- training -------------------------------------------------------------------------------


def _read(path: str, tag_field: str, encoding_errors: str) -> list[Sentence]:
    from seqtool.data.conllu import read_conllu_file

    sents = list(read_conllu_file(path, tag_field, encoding_errors))
    if not sents:
        raise SeqtoolError(f"{path}: no sentences (empty CoNLL-U file?)")
    return sents


def prepare(
    files: list[str],
    train_cfg,
    backbone: dict,
    dev: str | None = None,
    dev_fraction: float = 0.05,
    tag_field: str = "upos",
    char_dim: int = 32,
    char_hidden: int = 64,
    word_dropout: float = 0.25,
    encoding_errors: str = "strict",
    resume_header=None,
):
    """Read CoNLL-U, build vocabularies and the model; return (model, train source, dev).

    Training sentences are streamed (one pass for counts, one for a held-out tail, one to
    fill the row cache on first use) and batched from the cache, so memory holds the
    vocabularies and a few numbers per sentence, not the sentences."""
    from seqtool import checkpoint
    from seqtool.data.corpus import spool_stdin
    from seqtool.tokenizers import CharTokenizer

    check_tag_field(tag_field)
    if not files:
        raise SeqtoolError("give at least one training CoNLL-U file (or - for stdin)")
    given = list(files)
    files, spooled = spool_stdin(given)
    try:
        corpus = _Corpus(files, given, tag_field, encoding_errors)
        n, dev_sents = len(corpus), None
        if dev is not None:
            dev_sents = _read(dev, tag_field, encoding_errors)
        elif dev_fraction > 0:
            if not 0 < dev_fraction < 1:
                raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {dev_fraction}")
            n = max(1, int(len(corpus) * (1 - dev_fraction)))
            if n >= len(corpus):
                raise SeqtoolError(
                    "too few sentences to hold out a dev set; pass --dev or --dev-fraction 0"
                )
            dev_sents = corpus.hold_out(n)
        counts = corpus.words
        if resume_header is not None:
            config = TaggerConfig.from_dict(resume_header.config)
            model = Tagger.from_parts(
                config,
                checkpoint.load_tokenizer(resume_header),
                {k: resume_header.json(k) for k in ("words", "tags")},
            )
        else:
            tags = sorted(corpus.tags)
            if not tags:
                raise SeqtoolError(f"no {tag_field} tags in the training data (column all '_')")
            words = ["<pad>", "<unk>"] + sorted(counts, key=lambda w: (-counts[w], w))
            chars = CharTokenizer.train(["".join(corpus.chars)])
            config = TaggerConfig(
                backbone=BackboneConfig(vocab_size=len(words), **backbone),
                num_tags=len(tags),
                tag_field=tag_field,
                char_vocab_size=chars.vocab_size,
                char_dim=char_dim,
                char_hidden=char_hidden,
                word_dropout=word_dropout,
            )
            model = Tagger(config, chars, words, tags)
        alpha = model.config.word_dropout
        with torch.no_grad():
            for w, i in model.word_index.items():
                if i > UNK:
                    model.unk_prob[i] = alpha / (alpha + counts.get(w, 0)) if alpha > 0 else 0.0
        collate = _TagCollate(model, corpus.encode(model, n))
    finally:
        if spooled:
            import os

            os.unlink(spooled)
    source = BucketedSource(
        corpus.lengths[:n], collate, batch_size=train_cfg.batch_size, seed=train_cfg.seed
    )
    dev_data = model.tag_data(dev_sents) if dev_sents else None
    return model, source, dev_data


class _Corpus:
    """Training CoNLL-U files, streamed. One pass at construction checks them and keeps the
    sentence lengths (int32) and counts of normalized words, tags and characters; the
    sentences themselves are read again when needed."""

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
        from seqtool.data.conllu import read_conllu
        from seqtool.data.text import iter_lines

        name = "<stdin>" if self.names[k] == "-" else self.names[k]
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

    def hold_out(self, n: int) -> list[Sentence]:
        """Sentences n: as a list; the counts are then those of the first n."""
        tail = [s for i, s in enumerate(self.sentences()) if i >= n]
        for s in tail:
            self._count(s, -1)
        self.words = +self.words  # drop words seen only in the tail
        return tail

    def content_hash(self) -> str:
        from seqtool.data.rows import cache_key, file_hash

        return cache_key(self.tag_field, self.encoding_errors, file_hash(self.files))

    def encode(self, model: Tagger, n: int) -> dict[str, Any]:
        """The first n sentences in the row cache: per sentence its word forms (ids of distinct
        original forms, in order of first appearance) and tag ids; per form its char ids and
        word id. Built in one pass on first use."""
        import json

        from seqtool.data import rows

        key = rows.cache_key(
            "tagger",
            self.content_hash(),
            str(n),
            json.dumps([model.words, model.tags]),
            model.tokenizer.to_bytes(),
        )
        big = 1 << 31

        def build(out: dict[str, rows.RowWriter]) -> None:
            forms: dict[str, int] = {}
            tag_id = model.tag_index.get
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
            get = model.word_index.get
            out["form_words"].add([[get(normalize(f), UNK) for f in forms]])
            names = list(forms)
            for k in range(0, len(names), 4096):
                chunk = [clip_word(f) for f in names[k : k + 4096]]
                out["form_chars"].add(model.tokenizer.encode(chunk))

        parts = rows.cached_parts(
            key,
            {"forms": big, "tags": len(model.tags), "form_words": big, "form_chars": big},
            build,
        )
        return {
            "forms": rows.Rows([parts["forms"]]),
            "tags": rows.Rows([parts["tags"]]),
            "form_words": parts["form_words"].row(0).astype(np.int64),
            "form_chars": parts["form_chars"],
        }


class _TagCollate:
    """Batches as Tagger.encode builds them from words, built here from the cached form ids:
    distinct forms numbered in order of first appearance, their char ids, word ids, tags."""

    def __init__(self, model: Tagger, data: dict[str, Any]) -> None:
        self.forms, self.tags = data["forms"], data["tags"]
        self.form_words, self.form_chars = data["form_words"], data["form_chars"]

    def __call__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        forms = [self.forms[i] for i in idx]
        types: dict[int, int] = {}
        type_ids = [[types.setdefault(f, len(types) + 1) for f in s.tolist()] for s in forms]
        words, lengths = pad([self.form_words[s] for s in forms], PAD)
        word_types, _ = pad(type_ids, 0)
        chars, char_lengths = pad([self.form_chars.row(f) for f in types], PAD)
        tags, _ = pad([self.tags[i] for i in idx], IGNORE)
        return {
            "words": words,  # (B, T)
            "lengths": lengths,  # (B,)
            "word_types": word_types,  # (B, T) index into the U distinct forms, 1-based
            "chars": chars,  # (U, L)
            "char_lengths": char_lengths,  # (U,)
            "tags": tags,  # (B, T)
        }


def evaluate_file(
    model: Tagger, path: str, tag_field: str | None = None, encoding_errors: str = "strict"
) -> dict[str, Any]:
    """Metrics on a CoNLL-U file, with the per-tag table."""
    trained = model.config.tag_field
    if tag_field is not None and tag_field != trained:
        check_tag_field(tag_field)
        raise SeqtoolError(
            f"this model tags {trained}; it cannot be evaluated on --tag-field {tag_field}"
        )
    data = model.tag_data(_read(path, trained, encoding_errors))
    metrics = model.evaluate(data, per_tag=True)
    if not metrics["oov_tokens"]:  # no unseen words: leave NaN out of JSON output
        del metrics["oov_accuracy"]
    return metrics


def report(metrics: dict[str, Any], console: Any) -> None:
    """Per-tag precision / recall / F1 table for `seqtool eval` (stderr)."""
    table_data = metrics.get("per_tag")
    if not table_data:
        return
    from rich.table import Table

    table = Table(title="per tag")
    for name in ("tag", "precision", "recall", "f1", "support"):
        table.add_column(name, justify="left" if name == "tag" else "right")
    for tag, m in sorted(table_data.items(), key=lambda kv: -kv[1]["support"]):
        table.add_row(
            tag, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"])
        )
    console.print(table)


def tag_stream(
    model: Tagger,
    sentences: Iterable[Sentence],
    chunk_sentences: int = 256,
    chunk_tokens: int = 8192,
    batch_size: int = 64,
) -> Iterator[list[tuple[Sentence, list[str]]]]:
    """Chunks of (sentence, tags) in input order: a chunk of sentences is read, tagged in
    length-sorted batches and handed back, so output streams with bounded memory."""
    chunk: list[Sentence] = []
    tokens = 0
    for s in sentences:
        chunk.append(s)
        tokens += len(s.words)
        if len(chunk) >= chunk_sentences or tokens >= chunk_tokens:
            yield list(zip(chunk, model.predict([c.words for c in chunk], batch_size), strict=True))
            chunk, tokens = [], 0
    if chunk:
        yield list(zip(chunk, model.predict([c.words for c in chunk], batch_size), strict=True))
