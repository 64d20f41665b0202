"""Text classifier (many-to-one): backbone (bidirectional LSTM by default) + pooling + linear.

Pooling: `last` concatenates the final forward and backward states (the classic
LSTMClassifier); `max` and `mean` pool the outputs over the real tokens only. Batches are
packed by the backbone, so padding never reaches the backward direction.

With `ngrams` > 0 a fastText-style bag of hashed token n-grams sits beside the backbone: it
reads the whole text (the backbone reads the max_length head + tail), learns on its own loss,
and the two branches' log-probabilities are averaged. No recurrence is re-implemented here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone import Backbone
from seqtool.config import BackboneConfig, _Config
from seqtool.data.batching import BucketedSource, eval_batches, pad
from seqtool.data.conllu import simple_tokenize
from seqtool.errors import CheckpointError, ConfigError, SeqtoolError
from seqtool.tasks.base import ModuleTask

POOLS = ("last", "max", "mean")
SELECT = ("mean", "pooled")  # how several dev sets rank checkpoints
# A unigram/bpe tokenizer trained here learns from at most this many characters of training
# text (evenly spread rows): sentencepiece needs ~20 bytes of memory per character.
TOKENIZER_SAMPLE_CHARS = 10_000_000
EMBED = "backbone.embedding.embed.weight"  # the token table in a backbone's state dict


@dataclass(frozen=True)
class ClassifierConfig(_Config):
    backbone: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(vocab_size=1, bidirectional=True)
    )
    num_labels: int = 2
    pool: str = "last"
    head_dropout: float = 0.3
    max_length: int = 0  # tokens kept per text, head + tail (0: all)
    lowercase: bool = False  # fold case before tokenizing (helps mixed-case corpora share words)
    # Split punctuation and English clitics off words (don't -> do n't) and drop HTML line
    # breaks before tokenizing, so raw and PTB-tokenized corpora (IMDB, SST-2) share forms.
    normalize: bool = False
    # A fastText-style bag of hashed token n-grams beside the backbone: order (0: none; 2:
    # tokens and token pairs), hash buckets and vector size. It reads the whole text, not
    # only the max_length tokens the backbone reads.
    ngrams: int = 0
    ngram_buckets: int = 262_144
    ngram_dim: int = 8

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if self.num_labels < 2:
            raise ConfigError("a classifier needs at least two labels")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), not {self.head_dropout}")
        if self.max_length < 0 or 0 < self.max_length < 4:
            raise ConfigError(f"max length must be 0 (no limit) or >= 4, not {self.max_length}")
        if not 0 <= self.ngrams <= 4:
            raise ConfigError(f"ngrams must be 0 (off) to 4, not {self.ngrams}")
        if self.ngram_buckets < 1 or self.ngram_dim < 1:
            raise ConfigError("ngram buckets and ngram dim must be >= 1")


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
        return _lengths(self.ids)


def _lengths(ids: Sequence[Sequence[int]]) -> Sequence[int]:
    known = getattr(ids, "lengths", None)  # Rows hold theirs in memory
    return known if known is not None else [len(x) for x in ids]


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


def _labelled(labels: Sequence[str], probs: torch.Tensor) -> list[tuple[str, float, list[float]]]:
    """(label, its probability, all probabilities) per row of probs (N, C)."""
    best, top = probs.max(-1)
    return [
        (labels[int(j)], float(p), row)
        for j, p, row in zip(top.tolist(), best.tolist(), probs.tolist(), strict=True)
    ]


class Ensemble:
    """Several classifiers with the same labels as one teacher: their class probabilities
    averaged (each reads the text with its own tokenizer and options)."""

    def __init__(self, models: Sequence[Classifier]) -> None:
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
        return _labelled(self.labels, probs.mean(0))  # (N, C) averaged


@dataclass
class PseudoLabelStats:
    documents: int = 0
    units: int = 0  # sentences (or whole texts) within the word limits
    agreed: int = 0  # units whose predicted label equals their document's label
    kept: dict[str, int] = field(default_factory=dict)  # label -> units written


def pseudo_label(
    model: Classifier | Ensemble,
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
    """(text, label, score) training rows from documents, labelled by `model` (the teacher).

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


_HASH_MOD = 2_147_483_647  # 2**31 - 1 keeps the rolling n-gram hash inside int64


def ngram_ids(
    ids: torch.Tensor, lengths: torch.Tensor, n: int, vocab: int, buckets: int, pad: int
) -> torch.Tensor:
    """Bag ids of every token and n-gram (orders 2..n) of each row: ids (B, T) -> (B, ~n*T).

    A token keeps its id; an n-gram goes to one of `buckets` rows after the vocabulary by a
    rolling hash of its ids. Positions past a row's length get `pad`."""
    B, T = ids.shape
    pos = torch.arange(T, device=ids.device)[None, :]  # (1, T)
    out = [ids.masked_fill(pos >= lengths[:, None], pad)]
    h = ids.long()
    for k in range(2, n + 1):
        if k > T:
            break
        h = (h[:, :-1] * vocab + ids[:, k - 1 :]) % _HASH_MOD  # (B, T-k+1): k-grams from pos
        rows = (h * 1_000_003 + k) % buckets + vocab
        out.append(rows.masked_fill(pos[:, : T - k + 1] + k > lengths[:, None], pad))
    return torch.cat(out, 1)


class Classifier(ModuleTask):
    task = "classifier"
    shipped_model = "sentiment.safetensors"
    config_class = ClassifierConfig
    main_metric = "accuracy"
    higher_is_better = True

    def __init__(
        self, config: ClassifierConfig, tokenizer: Any, labels: Sequence[str] = ()
    ) -> None:
        super().__init__(config, tokenizer)
        labels = list(labels) or [str(i) for i in range(config.num_labels)]
        if len(labels) != config.num_labels:
            raise CheckpointError(f"{len(labels)} label names for {config.num_labels} labels")
        self.labels = labels
        self.text_column, self.label_column = "text", "label"
        self.backbone = Backbone(config.backbone)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.backbone.output_size, config.num_labels)
        if config.ngrams:
            # The bag's last row is padding: a zero vector left out of the mean.
            rows = config.backbone.vocab_size + config.ngram_buckets + 1
            self.ngram_embed = nn.EmbeddingBag(
                rows, config.ngram_dim, mode="mean", padding_idx=rows - 1
            )
            with torch.no_grad():
                bound = 1.0 / config.ngram_dim  # fastText's initialisation
                self.ngram_embed.weight.uniform_(-bound, bound)
                self.ngram_embed.weight[rows - 1].zero_()
            self.ngram_head = nn.Linear(config.ngram_dim, config.num_labels)

    # -- checkpoint extras ---------------------------------------------------------------------

    def extra_metadata(self) -> dict[str, Any]:
        return {"labels": self.labels, "columns": [self.text_column, self.label_column]}

    @classmethod
    def from_parts(
        cls, config: ClassifierConfig, tokenizer: Any, extra: dict[str, Any]
    ) -> Classifier:
        model = cls(config, tokenizer, extra.get("labels") or ())
        cols = extra.get("columns")
        if cols:
            model.text_column, model.label_column = cols
        return model

    # -- model ---------------------------------------------------------------------------------

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T), lengths (B,) -> logits (B, C). With an n-gram bag, the mean of the two
        branches' log-probabilities: softmax makes it their normalised geometric mean, which
        keeps the scores calibrated (a plain product of the two is overconfident)."""
        main, bag = self.branches(ids, lengths)
        if bag is None:
            return main
        return (main.float().log_softmax(-1) + bag.float().log_softmax(-1)) / 2

    def branches(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(backbone logits (B, C), n-gram bag logits (B, C) or None)."""
        cfg = self.config
        bag = None
        if cfg.ngrams:
            pad = self.ngram_embed.num_embeddings - 1
            feats = ngram_ids(
                ids, lengths, cfg.ngrams, cfg.backbone.vocab_size, cfg.ngram_buckets, pad
            )  # (B, ~n*T): the whole text
            bag = self.ngram_head(self.ngram_embed(feats))  # (B, C)
            # encode kept every token for the bag; the backbone reads max_length of them.
            ids, lengths = truncate_batch(ids, lengths, cfg.max_length)
        T = ids.size(1)
        out, state = self.backbone(ids, lengths)  # (B, T, D*H); padding never read
        pool = cfg.pool
        if pool == "last":
            h = state[0]  # (layers*D, B, H): the last layer's directions are the last D rows
            D = self.backbone.rnn.num_directions
            pooled = torch.cat(list(h[-D:]), dim=-1)  # (B, D*H)
        else:
            mask = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]  # (B, T)
            if pool == "max":
                pooled = out.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1)
            else:
                pooled = (out * mask[:, :, None]).sum(1) / lengths[:, None].to(out.dtype)
        return self.head(self.dropout(pooled)), bag  # (B, C)

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        # Each branch learns on its own loss, as an ensemble: a bag that fits the training
        # set fast must not starve the backbone of gradient.
        main, bag = self.branches(batch["ids"], batch["lengths"])
        y, scores = batch["labels"], batch.get("scores")
        loss = soft_cross_entropy(main, y, scores)
        if bag is not None:
            loss = loss + soft_cross_entropy(bag, y, scores)
        return loss, int(batch["lengths"].sum())

    # -- encoding and prediction ---------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids, cut to max_length (kept whole for an n-gram bag: the backbone's batch is
        cut instead); an empty text becomes one </s> so it still gets a label."""
        eos = self.tokenizer.eos_id
        texts = prepare_texts(texts, self.config.lowercase, self.config.normalize)
        ids = self.tokenizer.encode(texts)
        keep = 0 if self.config.ngrams else self.config.max_length
        return [truncate(x, keep) or [eos] for x in ids]

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Any]:
        """As the base, on the text as the model reads it (lowercased, normalized)."""
        cfg = self.config
        (prepared,) = prepare_texts([text], cfg.lowercase, cfg.normalize)
        return super().inspect_inputs(prepared)

    @torch.inference_mode()
    def predict_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, C) for encoded texts (id lists or Rows), in input order."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        probs = torch.empty(len(ids), self.config.num_labels)
        lengths = _lengths(ids)
        if self.config.ngrams and self.config.max_length:  # the backbone's view sets the cost
            lengths = np.minimum(np.asarray(lengths), self.config.max_length)
        # Cap tokens per batch too, so a batch of long reviews stays cache-sized.
        max_tokens = max(batch_size * 32, int(max(lengths, default=1)))
        for idx in eval_batches(lengths, batch_size, max_tokens):
            x, lens = pad([ids[i] for i in idx], self.tokenizer.pad_id)
            logits = self(x.to(device), lens.to(device))
            probs[idx] = logits.float().softmax(-1).cpu()
        self.train(was_training)
        return probs

    def predict(
        self, texts: Sequence[str], batch_size: int = 256
    ) -> list[tuple[str, float, list[float]]]:
        """(label, probability of that label, all class probabilities) per text, in order."""
        return _labelled(self.labels, self.predict_ids(self.encode(texts), batch_size))

    # -- evaluation ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, data: Encoded | list[tuple[str, Encoded]]) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix. Given several named
        sets, the headline numbers are over their union, plus one accuracy per set and their
        mean (`accuracy_mean`: each set counts the same, however many rows it has)."""
        groups = data if isinstance(data, list) else [("", data)]
        gold: list[int] = []
        pred: list[int] = []
        per_set: dict[str, float] = {}
        for name, enc in groups:
            p = self.predict_ids(enc.ids).argmax(-1).tolist()
            g = [int(y) for y in enc.labels]
            if name:
                hits = sum(a == b for a, b in zip(p, g, strict=True))
                per_set[f"accuracy_{name}"] = hits / max(1, len(p))
            gold += g
            pred += p
        metrics = classification_metrics(gold, pred, self.labels)
        if len(groups) > 1:  # per-set accuracies right after the headline (progress shows 4)
            mean = sum(per_set.values()) / len(per_set)
            metrics = {
                "accuracy": metrics.pop("accuracy"),
                **per_set,
                "accuracy_mean": mean,
                **metrics,
            }
        return metrics


def classification_metrics(gold: list[int], pred: list[int], labels: list[str]) -> dict[str, Any]:
    C = len(labels)
    cm = [[0] * C for _ in range(C)]  # rows: gold, columns: predicted
    for g, p in zip(gold, pred, strict=True):
        if g >= 0:
            cm[g][p] += 1
    n = len(gold)  # gold labels the model does not know (-1) count as errors
    correct = sum(cm[i][i] for i in range(C))
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, name in enumerate(labels):
        tp = cm[i][i]
        predicted = sum(cm[r][i] for r in range(C))
        support = sum(cm[i])
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[name] = {"precision": prec, "recall": rec, "f1": f1, "support": support}
        if support:  # classes absent from the gold data do not drag macro-F1 to zero
            f1s.append(f1)
    return {
        "accuracy": correct / n if n else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "examples": n,
        **({"unknown_gold_labels": n - sum(map(sum, cm))} if n > sum(map(sum, cm)) else {}),
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": cm},
    }


def report(metrics: dict[str, Any], console: Any) -> None:
    """Per-class table and confusion matrix on the (stderr) console for `seqtool eval`."""
    from rich.table import Table

    per_class = metrics.get("per_class")
    if per_class:
        t = Table(title="per class")
        for col in ("label", "precision", "recall", "F1", "support"):
            t.add_column(col, justify="left" if col == "label" else "right")
        for name, m in per_class.items():
            t.add_row(
                name,
                f"{m['precision']:.4f}",
                f"{m['recall']:.4f}",
                f"{m['f1']:.4f}",
                str(m["support"]),
            )
        console.print(t)
    conf = metrics.get("confusion")
    if conf:
        t = Table(title="confusion matrix")
        t.add_column("gold \\ predicted")
        for name in conf["labels"]:
            t.add_column(name, justify="right")
        for name, row in zip(conf["labels"], conf["matrix"], strict=True):
            t.add_row(name, *map(str, row))
        console.print(t)


# -- data, training setup ------------------------------------------------------------------------


def soft_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy against a target that gives each row's label probability `score` and
    spreads the rest evenly over the other classes (a teacher's belief, exact for two
    classes); plain cross-entropy when scores is None (every score 1)."""
    if scores is None:
        return F.cross_entropy(logits.float(), labels)
    logp = logits.float().log_softmax(-1)  # (B, C)
    own = logp.gather(1, labels[:, None]).squeeze(1)  # (B,)
    rest = (logp.sum(-1) - own) / (logp.size(-1) - 1)  # (B,) mean over the other classes
    return -(scores * own + (1 - scores) * rest).mean()


def label_ids(model: Classifier, table: Any, unknown_ok: bool = False) -> np.ndarray:
    """Every row's label as the model's label id (int32 array); labels the model does not know
    are an error (or -1 when unknown_ok, which evaluation counts as wrong)."""
    from seqtool.errors import DataError

    index = {name: i for i, name in enumerate(model.labels)}
    lut = np.array([index.get(y, -1) for y in table.label_names], dtype=np.int32)
    if not unknown_ok and (lut < 0).any():
        y = table.label_names[int(np.flatnonzero(lut < 0)[0])]  # the first to appear
        raise DataError(
            f"label {y!r} is not one of the model's labels ({', '.join(model.labels)})",
            table.path,
        )
    return lut[table.codes]


def encode_table(model: Classifier, table: Any) -> Any:
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


def encode_labelled(model: Classifier, table: Any, unknown_ok: bool = False) -> Encoded:
    """Encode a LabelledTable (see label_ids for unknown labels)."""
    return Encoded(encode_table(model, table), label_ids(model, table, unknown_ok))


def _collate(data: Encoded, pad_id: int):
    labels = torch.as_tensor(np.asarray(data.labels))
    scores = None if data.scores is None else torch.as_tensor(data.scores, dtype=torch.float32)

    def collate(idx: list[int]) -> dict[str, torch.Tensor]:
        ids, lengths = pad([data.ids[i] for i in idx], pad_id)
        batch = {"ids": ids, "lengths": lengths, "labels": labels[idx].long()}
        if scores is not None:
            batch["scores"] = scores[idx]  # (B,)
        return batch

    return collate


def _lm_headers(paths: list[str]) -> tuple[Any, Any]:
    """(forward LM header, backward LM header) from --init-from files: one or both may be
    given; two must be one forward and one `--reverse` LM with the same tokenizer and sizes."""
    from seqtool import checkpoint

    if len(paths) > 2:
        raise SeqtoolError("--init-from takes at most two LMs: a forward and a --reverse one")
    heads = []
    for p in paths:
        header = checkpoint.read_header(p)
        checkpoint.expect_task(header, "lm", "train classifier --init-from")
        heads.append(header)
    fwd = [h for h in heads if not h.config.get("reverse")]
    bwd = [h for h in heads if h.config.get("reverse")]
    if len(fwd) > 1 or len(bwd) > 1:
        which = "forward" if len(fwd) > 1 else "--reverse"
        raise SeqtoolError(
            f"--init-from: {paths[0]} and {paths[1]} are both {which} LMs; give one forward "
            "and one --reverse LM"
        )
    if len(heads) == 2:
        a, b = (h.config["backbone"] for h in heads)
        for k in ("hidden_size", "layers", "cell"):
            if a[k] != b[k]:
                raise SeqtoolError(
                    f"--init-from: {paths[0]} has {k} {a[k]} but {paths[1]} has {b[k]}"
                )
        if (
            checkpoint.load_tokenizer(heads[0]).to_bytes()
            != checkpoint.load_tokenizer(heads[1]).to_bytes()
        ):
            raise SeqtoolError(f"--init-from: {paths[0]} and {paths[1]} use different tokenizers")
    return (fwd[0] if fwd else None), (bwd[0] if bwd else None)


def _init_from_lm(model: Classifier, fwd: Any, bwd: Any) -> None:
    """ULMFiT-style start: copy the LMs' embedding and recurrent weights.

    With a forward and a backward (--reverse) LM, the forward direction becomes the forward
    LM and the backward direction the backward LM, exactly: the embedding is the two LMs'
    tables side by side and each direction's input weights read only its own half (the
    other half starts at zero). With one LM, its weights also seed the other direction
    (input-to-gate weights are word-feature detectors either way; the reversed recurrence is
    relearned). Above layer 0 a direction also reads the other direction's lower states;
    those input columns start at zero so each direction begins as its LM."""
    from seqtool import checkpoint

    bidi = model.config.backbone.bidirectional
    H = model.config.backbone.hidden_size
    own = model.state_dict()
    srcs = {"": fwd or bwd, "_reverse": bwd or fwd}
    if not bidi:
        srcs = {"": fwd or bwd}
    tensors = {id(h): checkpoint.load_tensors(h) for h in (fwd, bwd) if h is not None}
    with torch.no_grad():
        # Embedding: one LM's table, or the forward and backward tables side by side.
        tables = [tensors[id(h)][EMBED] for h in (fwd, bwd) if h]
        emb = own[EMBED]
        both = torch.cat(tables, 1) if len(tables) == 2 and bidi else tables[0]
        if emb.shape != both.shape:
            raise SeqtoolError(
                f"--init-from: embedding {tuple(both.shape)} does not fit {tuple(emb.shape)}"
            )
        emb.copy_(both)
        E0 = tables[0].shape[1]  # input columns of the forward LM's embedding half
        for suffix, header in srcs.items():
            src = tensors[id(header)]
            own_half = 1 if (suffix and bwd is not None and fwd is not None) else 0
            for name, value in src.items():
                if not name.startswith("backbone.rnn.rnn."):
                    continue
                dst = own[name + suffix]
                if dst.shape == value.shape:
                    dst.copy_(value)
                    continue
                if name.startswith("backbone.rnn.rnn.weight_ih_l"):
                    layer0 = name.endswith("_l0")
                    width = value.shape[1]
                    # layer 0 reads [fwd emb | bwd emb]; above, [fwd states | bwd states].
                    off = (E0 if layer0 else H) * own_half if dst.shape[1] != width else 0
                    if dst.shape[1] >= off + width and dst.shape[0] == value.shape[0]:
                        dst.zero_()
                        dst[:, off : off + width].copy_(value)
                        continue
                raise SeqtoolError(
                    f"--init-from: {name} {tuple(value.shape)} does not fit {tuple(dst.shape)}"
                )


def prepare(
    files: list[str],
    train_cfg: Any,
    backbone: dict,
    dev: list[str] | None = None,
    dev_fraction: float = 0.05,
    text_column: str = "text",
    label_column: str = "label",
    tokenizer: str = "unigram",
    vocab_size: int = 16000,
    pool: str = "last",
    head_dropout: float = 0.3,
    max_length: int = 0,
    max_tokens: int = 0,
    lowercase: bool = False,
    normalize: bool = False,
    ngrams: int = 0,
    ngram_buckets: int = 262_144,
    ngram_dim: int = 8,
    init_from: str | list[str] | None = None,
    tokenizer_sample: int = TOKENIZER_SAMPLE_CHARS,
    select: str = "mean",
    score_column: str | None = None,
    resume_header: Any = None,
) -> tuple[Classifier, BucketedSource, Any]:
    """Read labelled files, build (or reuse) tokenizer and model; return (model, source, dev).

    Tables stay on disk (Arrow, then the token row cache): memory holds a label id, a length
    and an index per row, so files of millions of rows train with bounded memory."""
    from seqtool import checkpoint, tokenizers
    from seqtool.data.rows import Rows
    from seqtool.data.tabular import read_labelled

    if not files:
        raise SeqtoolError("give at least one training file")
    if select not in SELECT:
        raise SeqtoolError(f"--select must be one of {', '.join(SELECT)}, not {select!r}")
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
    train_rows, held = np.arange(n, dtype=np.int64), None  # example -> row of the tables
    if not dev_tables and dev_fraction > 0:
        if not 0 < dev_fraction < 1:
            raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {dev_fraction}")
        # A seeded random hold-out (files are often sorted by label).
        g = torch.Generator().manual_seed(train_cfg.seed)
        perm = torch.randperm(n, generator=g).numpy()
        k = max(1, int(n * dev_fraction))
        held, train_rows = perm[:k], perm[k:]
    init_paths = [init_from] if isinstance(init_from, str) else list(init_from or [])
    fwd_lm, bwd_lm = _lm_headers(init_paths) if init_paths else (None, None)
    lm_header = fwd_lm or bwd_lm
    if resume_header is not None:
        tok = checkpoint.load_tokenizer(resume_header)
        config = ClassifierConfig.from_dict(resume_header.config)
        classes = resume_header.json("labels")
    else:
        if lm_header is not None:
            # The LM's tokenizer and shapes come along: its weights only fit those.
            tok = checkpoint.load_tokenizer(lm_header)
            lm_bb = lm_header.config["backbone"]
            for k in ("embedding_dim", "hidden_size", "layers", "cell"):
                backbone[k] = lm_bb[k]
            if fwd_lm is not None and bwd_lm is not None:  # the two tables side by side
                if not backbone.get("bidirectional", True):
                    raise SeqtoolError(
                        "--init-from with a forward and a --reverse LM needs a bidirectional "
                        "classifier"
                    )
                backbone["embedding_dim"] = sum(
                    h.config["backbone"]["embedding_dim"] for h in (fwd_lm, bwd_lm)
                )
            if tokenizer not in ("unigram", "bpe", "char"):
                other = tokenizers.build(tokenizer, [], vocab_size)
                if other.to_bytes() != tok.to_bytes():
                    raise SeqtoolError(
                        f"--tokenizer {tokenizer} differs from the tokenizer of {init_paths[0]}"
                    )
        else:
            tok = _build_tokenizer(
                tokenizer, tables, train_rows, lowercase, vocab_size, tokenizer_sample, normalize
            )
        backbone.setdefault("bidirectional", True)
        config = ClassifierConfig(
            backbone=BackboneConfig(vocab_size=tok.vocab_size, padding_idx=tok.pad_id, **backbone),
            num_labels=len(classes),
            pool=pool,
            head_dropout=head_dropout,
            max_length=max_length,
            lowercase=lowercase,
            normalize=normalize,
            ngrams=ngrams,
            ngram_buckets=ngram_buckets,
            ngram_dim=ngram_dim,
        )
    model = Classifier(config, tok, classes)
    model.text_column, model.label_column = text_column, label_column
    if lm_header is not None and resume_header is None:
        _init_from_lm(model, fwd_lm, bwd_lm)
    ids = Rows([encode_table(model, tb).stores[0] for tb in tables])  # all rows, in file order
    labels = np.concatenate([label_ids(model, tb, unknown_ok=True) for tb in tables])
    if (labels[train_rows] < 0).any():  # resumed on labels the model was not built for
        for tb in tables:
            label_ids(model, tb)  # raises, naming the file and the label
    scores = None
    if score_column:
        scores = _scores(tables, score_column)[train_rows]
    train_data = Encoded(ids.select(train_rows), labels[train_rows], scores)
    source = BucketedSource(
        train_data.lengths,
        _collate(train_data, tok.pad_id),
        batch_size=train_cfg.batch_size,
        max_tokens=max_tokens,
        seed=train_cfg.seed,
    )
    dev_data: Any = None
    if dev_tables:
        encoded = [
            (_set_name(d.path), encode_labelled(model, d, unknown_ok=True)) for d in dev_tables
        ]
        dev_data = encoded if len(encoded) > 1 else encoded[0][1]
        if len(encoded) > 1 and select == "mean":
            model.main_metric = "accuracy_mean"  # the best checkpoint is picked on it
    elif held is not None:
        dev_data = Encoded(ids.select(held), labels[held])
    return model, source, dev_data


def _scores(tables: list[Any], column: str) -> np.ndarray:
    """Each training row's target probability for its label: the score column of the tables
    that have it, 1 (certain) for rows of tables without it (gold data beside teacher data)."""
    if not any(tb.has_column(column) for tb in tables):
        where = ", ".join(dict.fromkeys(tb.path for tb in tables))
        raise SeqtoolError(f"--score-column {column!r}: no training file has that column ({where})")
    return np.concatenate(
        [
            tb.probabilities(column) if tb.has_column(column) else np.ones(len(tb), np.float32)
            for tb in tables
        ]
    )


def _build_tokenizer(
    spec: str,
    tables: list[Any],
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


def _iter_all_texts(tables: list[Any]) -> Any:
    """(first row, texts) chunks over the tables joined in order."""
    start = 0
    for tb in tables:
        for texts in tb.iter_texts():
            yield start, texts
            start += len(texts)


def _gather_texts(tables: list[Any], rows: np.ndarray) -> list[str]:
    """The texts of `rows` (over the tables joined), in that order, in one streamed pass."""
    where = np.full(sum(len(tb) for tb in tables), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    out: list[str] = [""] * len(rows)
    for start, texts in _iter_all_texts(tables):
        pos = where[start : start + len(texts)]
        for k in np.flatnonzero(pos >= 0).tolist():
            out[pos[k]] = texts[k]
    return out


def _set_name(path: str) -> str:
    from pathlib import Path

    return Path(path).stem


def evaluate_file(
    model: Classifier,
    path: str,
    text_column: str | None = None,
    label_column: str | None = None,
    encoding_errors: str = "strict",
) -> dict[str, Any]:
    """Metrics on a labelled CSV/TSV/JSONL file (columns default to those used in training)."""
    from seqtool.data.tabular import read_labelled

    del encoding_errors  # tables are read as strict UTF-8; bad bytes name their line
    table = read_labelled(
        path, text_column or model.text_column, label_column or model.label_column
    )
    return model.evaluate(encode_labelled(model, table, unknown_ok=True))
