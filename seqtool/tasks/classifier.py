"""Text classifier (many-to-one): backbone (bidirectional LSTM by default) + pooling + linear.

Pooling: `last` concatenates the final forward and backward states (the classic
LSTMClassifier); `max` and `mean` pool the outputs over the real tokens only. Batches are
packed by the backbone, so padding never reaches the backward direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone import Backbone
from seqtool.config import BackboneConfig, _Config
from seqtool.data.batching import BucketedSource, eval_batches, pad
from seqtool.errors import CheckpointError, ConfigError, SeqtoolError
from seqtool.tasks.base import TaskModel

POOLS = ("last", "max", "mean")


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

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if self.num_labels < 2:
            raise ConfigError("a classifier needs at least two labels")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), not {self.head_dropout}")
        if self.max_length < 0 or 0 < self.max_length < 4:
            raise ConfigError(f"max length must be 0 (no limit) or >= 4, not {self.max_length}")


@dataclass
class Encoded:
    """Token ids and label ids of a labelled set, ready for batching."""

    ids: list[list[int]]
    labels: list[int]

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


def truncate(ids: list[int], max_length: int) -> list[int]:
    """Keep the head quarter and the tail three quarters (a review's verdict is often at the end:
    Sun et al. 2019 found head+tail best for long texts)."""
    if max_length <= 0 or len(ids) <= max_length:
        return ids
    head = max_length // 4
    return ids[:head] + ids[len(ids) - (max_length - head) :]


class Classifier(TaskModel):
    task = "classifier"
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
        """ids (B, T), lengths (B,) -> logits (B, C)."""
        T = ids.size(1)
        out, state = self.backbone(ids, lengths)  # (B, T, D*H); padding never read
        pool = self.config.pool
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
        return self.head(self.dropout(pooled))  # (B, C)

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        logits = self(batch["ids"], batch["lengths"])
        loss = F.cross_entropy(logits.float(), batch["labels"])
        return loss, int(batch["lengths"].sum())

    # -- encoding and prediction ---------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids, cut to max_length; an empty text becomes one </s> so it still gets a label."""
        eos = self.tokenizer.eos_id
        texts = [t.lower() for t in texts] if self.config.lowercase else list(texts)
        ids = self.tokenizer.encode(texts)
        return [truncate(x, self.config.max_length) or [eos] for x in ids]

    @torch.inference_mode()
    def predict_ids(self, ids: list[list[int]], batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, C) for encoded texts, in input order."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        probs = torch.empty(len(ids), self.config.num_labels)
        lengths = [len(x) for x in ids]
        # Cap tokens per batch too, so a batch of long reviews stays cache-sized.
        max_tokens = max(batch_size * 32, max(lengths, default=1))
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
        probs = self.predict_ids(self.encode(texts), batch_size)
        best, top = probs.max(-1)
        return [
            (self.labels[int(j)], float(p), row)
            for j, p, row in zip(top.tolist(), best.tolist(), probs.tolist(), strict=True)
        ]

    # -- evaluation ----------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, data: Encoded | list[tuple[str, Encoded]]) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix. Given several named
        sets, the headline numbers are over their union, plus one accuracy per set."""
        groups = data if isinstance(data, list) else [("", data)]
        gold: list[int] = []
        pred: list[int] = []
        per_set: dict[str, float] = {}
        for name, enc in groups:
            p = self.predict_ids(enc.ids).argmax(-1).tolist()
            if name:
                hits = sum(a == b for a, b in zip(p, enc.labels, strict=True))
                per_set[f"accuracy_{name}"] = hits / max(1, len(p))
            gold += enc.labels
            pred += p
        metrics = classification_metrics(gold, pred, self.labels)
        if len(groups) > 1:  # per-set accuracies right after the headline (progress shows 4)
            metrics = {"accuracy": metrics.pop("accuracy"), **per_set, **metrics}
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


def encode_labelled(model: Classifier, table: Any, unknown_ok: bool = False) -> Encoded:
    """Encode a Labelled table; labels the model does not know are an error (or -1 when
    unknown_ok, which evaluation counts as wrong)."""
    from seqtool.errors import DataError

    index = {name: i for i, name in enumerate(model.labels)}
    labels = []
    for y in table.labels:
        j = index.get(y)
        if j is None:
            if not unknown_ok:
                raise DataError(
                    f"label {y!r} is not one of the model's labels ({', '.join(model.labels)})",
                    table.path,
                )
            j = -1
        labels.append(j)
    return Encoded(model.encode(table.texts), labels)


def _collate(data: Encoded, pad_id: int):
    def collate(idx: list[int]) -> dict[str, torch.Tensor]:
        ids, lengths = pad([data.ids[i] for i in idx], pad_id)
        return {
            "ids": ids,
            "lengths": lengths,
            "labels": torch.tensor([data.labels[i] for i in idx]),
        }

    return collate


def _init_from_lm(model: Classifier, path: str) -> None:
    """ULMFiT-style start: copy the LM's embedding and recurrent weights. The LM is
    unidirectional, so its layer-k weights go to the forward direction and also seed the
    backward one (input-to-gate weights are word-feature detectors either way; the reversed
    recurrence is relearned). Above layer 0 a bidirectional layer also reads the lower
    backward states; those input columns start at zero so each layer begins as the LM's."""
    from seqtool import checkpoint

    header = checkpoint.read_header(path)
    checkpoint.expect_task(header, "lm", "train classifier --init-from")
    src = checkpoint.load_tensors(header)
    own = model.state_dict()
    H = model.config.backbone.hidden_size
    with torch.no_grad():
        for name, value in src.items():
            if not name.startswith("backbone."):
                continue
            targets = [name]
            if name.startswith("backbone.rnn.rnn.") and model.config.backbone.bidirectional:
                targets.append(name + "_reverse")
            for t in targets:
                dst = own[t]
                if dst.shape == value.shape:
                    dst.copy_(value)
                elif (
                    t.startswith("backbone.rnn.rnn.weight_ih_l")
                    and dst.shape[1] == 2 * value.shape[1] == 2 * H
                ):
                    dst.zero_()
                    dst[:, :H].copy_(value)
                else:
                    raise SeqtoolError(
                        f"--init-from {path}: {name} {tuple(value.shape)} does not fit "
                        f"{tuple(dst.shape)}"
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
    init_from: str | None = None,
    resume_header: Any = None,
) -> tuple[Classifier, BucketedSource, Any]:
    """Read labelled files, build (or reuse) tokenizer and model; return (model, source, dev)."""
    from seqtool import checkpoint
    from seqtool.data.tabular import Labelled, read_labelled
    from seqtool.tokenizers import build as build_tokenizer

    if not files:
        raise SeqtoolError("give at least one training file")
    tables = [read_labelled(f, text_column, label_column) for f in files]
    texts = [t for tb in tables for t in tb.texts]
    ys = [y for tb in tables for y in tb.labels]
    classes = sorted(set(ys))
    if len(classes) < 2:
        raise SeqtoolError(
            f"label column {label_column!r} holds one class only ({classes[0]!r}); "
            "a classifier needs at least two"
        )
    dev_sets = [read_labelled(f, text_column, label_column) for f in dev or []]
    if not dev_sets and dev_fraction > 0:
        if not 0 < dev_fraction < 1:
            raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {dev_fraction}")
        # A seeded random hold-out (files are often sorted by label).
        g = torch.Generator().manual_seed(train_cfg.seed)
        perm = torch.randperm(len(texts), generator=g).tolist()
        k = max(1, int(len(texts) * dev_fraction))
        held, kept = perm[:k], perm[k:]
        dev_sets = [Labelled([texts[i] for i in held], [ys[i] for i in held], "held-out")]
        texts, ys = [texts[i] for i in kept], [ys[i] for i in kept]
    lm_header = checkpoint.read_header(init_from) if init_from else None
    if lm_header is not None:
        checkpoint.expect_task(lm_header, "lm", "train classifier --init-from")
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
            if tokenizer not in ("unigram", "bpe", "char"):
                other = build_tokenizer(tokenizer, [], vocab_size)
                if other.to_bytes() != tok.to_bytes():
                    raise SeqtoolError(
                        f"--tokenizer {tokenizer} differs from the tokenizer of {init_from}"
                    )
        else:
            tok = build_tokenizer(
                tokenizer, [t.lower() for t in texts] if lowercase else texts, vocab_size
            )
        backbone.setdefault("bidirectional", True)
        config = ClassifierConfig(
            backbone=BackboneConfig(vocab_size=tok.vocab_size, padding_idx=tok.pad_id, **backbone),
            num_labels=len(classes),
            pool=pool,
            head_dropout=head_dropout,
            max_length=max_length,
            lowercase=lowercase,
        )
    model = Classifier(config, tok, classes)
    model.text_column, model.label_column = text_column, label_column
    if init_from and resume_header is None:
        _init_from_lm(model, init_from)
    train_data = encode_labelled(model, Labelled(texts, ys, "train"))
    source = BucketedSource(
        train_data.lengths,
        _collate(train_data, tok.pad_id),
        batch_size=train_cfg.batch_size,
        max_tokens=max_tokens,
        seed=train_cfg.seed,
    )
    dev_data: Any = None
    if dev_sets:
        encoded = [
            (_set_name(d.path), encode_labelled(model, d, unknown_ok=True)) for d in dev_sets
        ]
        dev_data = encoded if len(encoded) > 1 else encoded[0][1]
    return model, source, dev_data


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
