"""Part-of-speech tagger: [word embedding; char features] -> bidirectional backbone -> linear
head per token. Many-to-many with equal lengths.

Words are looked up lowercased with digits folded to 0; the char encoder sees the original
form (case, suffixes), so unseen words are still tagged well. In training, a word seen c
times is replaced by <unk> with probability alpha / (alpha + c) (word dropout), which
trains the <unk> row and teaches the model to lean on characters for rare words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from seqtool import checkpoint
from seqtool.backbone import Encoder, Recurrent
from seqtool.config import BackboneConfig, _Config, backbone_field, opt
from seqtool.data import tagging
from seqtool.data.batching import BucketedSource
from seqtool.data.conllu import Sentence, check_tag_field
from seqtool.data.tagging import IGNORE, UNK, TagData
from seqtool.errors import CheckpointError, ConfigError, SeqtoolError
from seqtool.metrics import per_label, prf_table
from seqtool.tasks.base import Setup, TaskModel


@dataclass(frozen=True)
class TaggerOptions(_Config):
    """Train a part-of-speech tagger on CoNLL-U (UPOS by default).

    The model: word embedding + a char BiLSTM per word -> bidirectional LSTM -> one tag per word.

    Examples (tiny sizes and few steps, so each runs in seconds):

      seqtool train tagger corpora/pos-sample.conllu --hidden 32 --steps 20 --threads 1 -o pos.safetensors

      seqtool train tagger corpora/pos-sample.conllu --dev corpora/pos-sample.conllu --tag-field xpos --hidden 32 --steps 20 --threads 1 -o xpos.safetensors

      seqtool train tagger corpora/pos-sample.conllu --threads 1 --max-time 0.1 --save-dtype fp16 -o small.safetensors   # 6 seconds
    """

    files: list[str] = opt(help="Training CoNLL-U file(s); - reads stdin.", argument=True)
    dev: str | None = opt(None, "Dev CoNLL-U file for evaluation.")
    dev_fraction: float = opt(
        0.05, "Hold out this tail fraction of sentences as dev without --dev."
    )
    encoding_errors: str = opt("strict", "strict (error with line and column) | replace | ignore.")


@dataclass(frozen=True)
class TaggerConfig(_Config):
    backbone: BackboneConfig = backbone_field(vocab_size=2)
    num_tags: int = opt(1, cli=False)
    tag_field: str = opt("upos", "Column to learn: upos | xpos.")  # also read by `seqtool tag`
    char_vocab_size: int = opt(5, cli=False)
    char_dim: int = opt(32, "Character embedding size.")
    char_hidden: int = opt(64, "Char encoder hidden units per direction.")
    word_dropout: float = opt(
        0.25, "alpha: a word seen c times becomes <unk> w.p. alpha/(alpha+c)."
    )

    def __post_init__(self) -> None:
        if self.tag_field not in ("upos", "xpos"):
            raise ConfigError(f"tag_field must be upos or xpos, not {self.tag_field!r}")
        if self.num_tags < 1 or self.char_dim < 1 or self.char_hidden < 1:
            raise ConfigError("num_tags, char_dim and char_hidden must be >= 1")
        if self.word_dropout < 0:
            raise ConfigError(f"word_dropout must be >= 0, not {self.word_dropout}")


class Tagger(TaskModel):
    task = "tagger"
    config_class = TaggerConfig
    options_class = TaggerOptions
    backbone_defaults = dict(hidden_size=200, embedding_dim=100, dropout=0.33,
                             embedding_dropout=0.33, bidirectional=True)  # fmt: skip
    eval_options = ("encoding_errors", "tag_field")
    shipped_model = "pos-en.safetensors"
    legacy_keys = {"word_embed.": "backbone.embedding.", "char_encoder.": "backbone.chars.",
                   "rnn.": "backbone.rnn."}  # fmt: skip
    main_metric = "accuracy"
    higher_is_better = True

    def __init__(self, config: TaggerConfig, tokenizer, words: Sequence[str], tags: Sequence[str]):
        super().__init__(config, tokenizer)
        self.words = list(words)  # id -> normalized word; 0 <pad>, 1 <unk>
        self.tags = list(tags)
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        chars = (config.char_vocab_size, config.char_dim, config.char_hidden)
        self.backbone = Encoder(config.backbone, chars=chars)
        self.dropout = nn.Dropout(config.backbone.dropout)
        self.head = nn.Linear(self.backbone.output_size, config.num_tags)
        # P(word -> <unk>) in training; set by `prepare` from training counts, not saved.
        self.register_buffer("unk_prob", torch.zeros(config.backbone.vocab_size), persistent=False)

    def extra_metadata(self) -> dict[str, Any]:
        return {"words": self.words, "tags": self.tags}

    @classmethod
    def from_parts(cls, config: TaggerConfig, tokenizer, extra: dict[str, Any]) -> Self:
        words, tags = extra.get("words"), extra.get("tags")
        if not isinstance(words, list) or not isinstance(tags, list):
            raise CheckpointError("tagger checkpoint lacks its word or tag vocabulary")
        return cls(config, tokenizer, words, tags)

    def encode(self, sentences: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Words of a batch -> the model's input tensors (as training batches are built)."""
        return tagging.encode_words(sentences, self.word_index, self.tokenizer)

    def forward(
        self, words, lengths, word_types, chars=None, char_lengths=None, char_vectors=None
    ) -> torch.Tensor:
        """-> tag logits (B, T, K) (meaningless past a sentence's length). word_types (B, T)
        points, 1-based, at U distinct forms: chars (U, L), or their char_vectors (U, C)."""
        if char_vectors is None:
            char_vectors = self.backbone.char_vectors(chars, char_lengths)  # (U, C)
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.unk_prob[words]
            words = words.masked_fill(drop, UNK)
        h, _ = self.backbone(words, lengths, char_vectors=char_vectors, word_types=word_types)
        return self.head(self.dropout(h))  # (B, T, K)

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        tags = batch["tags"]
        logits = self(**{k: v for k, v in batch.items() if k != "tags"})
        loss = F.cross_entropy(logits.float().flatten(0, 1), tags.flatten(), ignore_index=IGNORE)
        return loss, int((tags != IGNORE).sum())

    @torch.no_grad()
    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        """For `seqtool inspect`: words, [word embedding; char features] (1, T, E + C) and the
        bidirectional Recurrent they feed (see TaskModel.inspect_inputs)."""
        words = text.split()
        if not words:
            raise SeqtoolError("nothing to inspect: the text has no words")
        b = self.encode([words])
        c = self.backbone.char_vectors(b["chars"], b["char_lengths"])  # (U, C)
        return words, self.backbone.embed(b["words"], c, b["word_types"]), self.backbone.rnn

    @torch.inference_mode()
    def predict_ids(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 64, max_tokens: int = 4096
    ) -> list[list[int]]:
        """Tag ids per word, in input order, from length-sorted batches. Each distinct form is
        read by the char encoder once; a sentence longer than MAX_SEGMENT is tagged in
        overlapping windows (each kept tag still sees CONTEXT words on both sides)."""
        forms, word_of, batches = tagging.window_batches(
            sentences, self.word_index, batch_size, max_tokens
        )
        out: list[list[int]] = [[0] * len(s) for s in sentences]
        with self.evaluating() as device:
            word_of = torch.tensor(word_of, device=device)  # (U + 1,)
            char_vectors = tagging.form_vectors(self.backbone, self.tokenizer, forms, device)
            for word_types, lengths, keep in batches:
                word_types = word_types.to(device)  # (B, T)
                logits = self(word_of[word_types], lengths, word_types, char_vectors=char_vectors)
                best = logits.argmax(-1).cpu()  # (B, T)
                for row, (i, start, keep0, keep1) in enumerate(keep):
                    out[i][keep0:keep1] = best[row, keep0 - start : keep1 - start].tolist()
        return out

    def predict(self, sentences: Sequence[Sequence[str]], **options: Any) -> list[list[str]]:
        """Tags (strings) per word of tokenized sentences; options: predict_ids'."""
        return [[self.tags[t] for t in s] for s in self.predict_ids(sentences, **options)]

    def tag_stream(
        self, sentences: Iterable[Sentence], chunk_sentences: int = 256, chunk_tokens: int = 8192
    ) -> Iterator[list[tuple[Sentence, list[str]]]]:
        """Chunks of (sentence, tags) in input order: a chunk of sentences is read, tagged in
        length-sorted batches and handed back, so output streams with bounded memory."""
        for chunk in tagging.chunked(sentences, chunk_sentences, chunk_tokens):
            tags = self.predict([c.words for c in chunk])
            yield list(zip(chunk, tags, strict=True))

    def eval_data(
        self, path: str, encoding_errors: str = "strict", tag_field: str | None = None
    ) -> TagData:
        """A CoNLL-U file, scored on the tag field the model was trained on."""
        trained = self.config.tag_field
        sentences = tagging.eval_sentences(path, trained, tag_field, encoding_errors)
        return tagging.tag_data(sentences, self.word_index, self.tag_index, per_tag=True)

    @torch.no_grad()
    def evaluate(self, data: TagData) -> dict[str, Any]:
        """Token accuracy, accuracy on words unseen in training, and (data.per_tag) P/R/F1."""
        rows = data.compare(self.predict_ids(data.words), self.tags)
        if not rows:
            raise SeqtoolError("no gold tags to evaluate against (is the tag column all '_'?)")
        n, correct = len(rows), sum(r[0] for r in rows)
        n_oov, correct_oov = sum(r[1] for r in rows), sum(r[0] and r[1] for r in rows)
        metrics: dict[str, Any] = {
            "accuracy": correct / n,
            "oov_accuracy": correct_oov / n_oov if n_oov else float("nan"),
            "tokens": n,
            "oov_tokens": n_oov,
        }
        if data.per_tag:
            if not n_oov:  # no unseen words: leave NaN out of JSON output
                del metrics["oov_accuracy"]
            tp = Counter(r[3] for r in rows if r[0])
            n_pred, n_gold = Counter(r[2] for r in rows), Counter(r[3] for r in rows)
            metrics["per_tag"] = per_label(tp, n_pred, n_gold)
        return metrics

    @classmethod
    def report(cls, metrics: dict[str, Any]) -> list[Any]:
        """The per-tag precision / recall / F1 table, most frequent tags first."""
        rows = metrics.get("per_tag")
        if not rows:
            return []
        rows = dict(sorted(rows.items(), key=lambda kv: -kv[1]["support"]))
        return [prf_table("per tag", "tag", rows)]

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[Tagger, Any, Any]:
        """Read CoNLL-U, build vocabularies and the model; return (model, train source, dev).
        Sentences are streamed and batched from the row cache (see data.tagging)."""
        opts, model, backbone, train_cfg, resume_header = setup
        tag_field = model.get("tag_field", TaggerConfig.tag_field)
        check_tag_field(tag_field)
        with tagging.training_corpus(opts.files, tag_field, opts.encoding_errors) as corpus:
            n, dev_sents = corpus.split_dev(opts.dev, opts.dev_fraction)
            if resume_header is not None:
                config = TaggerConfig.from_dict(resume_header.config)
                extra = {k: resume_header.json(k) for k in ("words", "tags")}
                tagger = cls.from_parts(config, checkpoint.load_tokenizer(resume_header), extra)
            else:
                words, tags, chars = corpus.vocabularies()
                bb = BackboneConfig(vocab_size=len(words), **backbone)
                config = TaggerConfig(bb, len(tags), char_vocab_size=chars.vocab_size, **model)
                tagger = cls(config, chars, words, tags)
            alpha = tagger.config.word_dropout
            tagger.unk_prob.copy_(tagging.unk_probs(tagger.words, corpus.words, alpha))
            collate = corpus.collate(tagger.words, tagger.tags, tagger.tokenizer, n)
        lengths = corpus.lengths[:n]
        source = BucketedSource(lengths, collate, train_cfg.batch_size, seed=train_cfg.seed)
        index = (tagger.word_index, tagger.tag_index)
        return tagger, source, tagging.tag_data(dev_sents, *index) if dev_sents else None
