"""Text classifier (many-to-one): backbone (bidirectional LSTM by default) + pooling + linear.

Pooling (Encoder.pool): `last` concatenates the final forward and backward states (the
classic LSTMClassifier); `max` and `mean` pool the outputs over the real tokens only. With
`ngrams` > 0 a fastText-style n-gram bag (seqtool/ngrams.py) reads the whole text beside the
backbone (which reads the max_length head + tail), learns on its own loss, and the two
branches' log-probabilities are averaged. Data: data/labelled.py; transfer, targets: recipes/.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from seqtool.backbone import Encoder
from seqtool.config import BackboneConfig
from seqtool.data import labelled as data
from seqtool.data.batching import BucketedSource
from seqtool.data.labelled import Encoded
from seqtool.data.normalize import prepare_texts
from seqtool.errors import CheckpointError, SeqtoolError
from seqtool.metrics import confusion_table, labelled_sets_metrics, prf_table
from seqtool.ngrams import bag_logits, ngram_bag
from seqtool.recipes import calibration, soft_targets, transfer
from seqtool.tasks.base import Setup, TaskModel
from seqtool.tasks.classifier_options import SELECT, ClassifierConfig, ClassifierOptions


class Classifier(TaskModel):
    task = "classifier"
    config_class = ClassifierConfig
    options_class = ClassifierOptions
    backbone_defaults = dict(layers=1, hidden_size=128, embedding_dim=128, embedding_dropout=0.1,
                             bidirectional=True)  # fmt: skip
    option_defaults = {"max_length": 256}  # the CLI's; the config's 0 (all) reads old models
    eval_options = ("encoding_errors", "text_column", "label_column")
    shipped_model = "sentiment.safetensors"
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
        self.calibration = calibration.Calibration()  # T = 1 until fitted on dev
        self.calibration_method = "length"
        self.backbone = Encoder(config.backbone)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.backbone.output_size, config.num_labels)
        if config.ngrams:
            V, C = config.backbone.vocab_size, config.num_labels
            bag = ngram_bag(V, config.ngram_buckets, config.ngram_dim, C)
            self.ngram_embed, self.ngram_head = bag  # their own names: state-dict keys

    def extra_metadata(self) -> dict[str, Any]:
        return {"labels": self.labels, "columns": [self.text_column, self.label_column],
                "calibration": self.calibration.to_dict()}  # fmt: skip

    def callbacks(self) -> list[Any]:  # the best checkpoint's calibration, fitted on dev
        return [calibration.FitCalibration(self.calibration_method)]

    @classmethod
    def from_parts(
        cls, config: ClassifierConfig, tokenizer: Any, extra: dict[str, Any]
    ) -> Classifier:
        model = cls(config, tokenizer, extra.get("labels") or ())
        if extra.get("columns"):
            model.text_column, model.label_column = extra["columns"]
        model.calibration = calibration.Calibration.from_dict(extra.get("calibration"))
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
        if cfg.ngrams:  # the bag reads the whole text; the backbone max_length of it
            n, V, buckets = cfg.ngrams, cfg.backbone.vocab_size, cfg.ngram_buckets
            bag = bag_logits(self.ngram_embed, self.ngram_head, ids, lengths, n, V, buckets)
            ids, lengths = data.truncate_batch(ids, lengths, cfg.max_length)
        out, state = self.backbone(ids, lengths)  # (B, T, D*H); padding never read
        pooled = self.backbone.pool(out, state, lengths, cfg.pool)  # (B, D*H)
        return self.head(self.dropout(pooled)), bag  # (B, C)

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        # Each branch learns on its own loss, as an ensemble: a bag that fits the training
        # set fast must not starve the backbone of gradient.
        main, bag = self.branches(batch["ids"], batch["lengths"])
        y, scores = batch["labels"], batch.get("scores")
        loss = soft_targets.soft_cross_entropy(main, y, scores)
        if bag is not None:
            loss = loss + soft_targets.soft_cross_entropy(bag, y, scores)
        return loss, int(batch["lengths"].sum())

    # -- encoding and prediction ---------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids, cut to max_length (kept whole for an n-gram bag: the backbone's batch is
        cut instead); an empty text becomes one </s> so it still gets a label."""
        eos = self.tokenizer.eos_id
        ids = self.tokenizer.encode(
            prepare_texts(texts, self.config.lowercase, self.config.normalize)
        )
        keep = 0 if self.config.ngrams else self.config.max_length
        return [data.truncate(x, keep) or [eos] for x in ids]

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Any]:
        """As the base, on the text as the model reads it (lowercased, normalized)."""
        (prepared,) = prepare_texts([text], self.config.lowercase, self.config.normalize)
        return super().inspect_inputs(prepared)

    @torch.inference_mode()
    def logits_ids(
        self, ids: Sequence[Sequence[int]], batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Uncalibrated logits (N, C) and token counts (N,) of encoded texts, in input order."""
        logits = torch.empty(len(ids), self.config.num_labels)
        lengths = torch.ones(len(ids), dtype=torch.long)
        cap = self.config.max_length if self.config.ngrams else 0  # the backbone's view costs
        with self.evaluating() as device:
            for idx, x, lens in data.predict_batches(ids, batch_size, self.tokenizer.pad_id, cap):
                logits[idx] = self(x.to(device), lens.to(device)).float().cpu()
                lengths[idx] = lens
        return logits, lengths

    def predict_ids(self, ids: Sequence[Sequence[int]], batch_size: int = 256) -> torch.Tensor:
        """Calibrated class probabilities (N, C) of encoded texts (id lists or Rows)."""
        return self.calibration.apply(*self.logits_ids(ids, batch_size))

    def predict(
        self, texts: Sequence[str], batch_size: int = 256
    ) -> list[tuple[str, float, list[float]]]:
        """(label, probability of that label, all class probabilities) per text, in order."""
        return data.label_rows(self.labels, self.predict_ids(self.encode(texts), batch_size))

    # -- evaluation ----------------------------------------------------------------------------

    def eval_data(
        self,
        path: str,
        encoding_errors: str = "strict",
        text_column: str | None = None,
        label_column: str | None = None,
    ) -> Encoded:
        """A labelled CSV/TSV/JSONL file (columns default to those used in training)."""
        from seqtool.data.tabular import read_labelled

        text, label = text_column or self.text_column, label_column or self.label_column
        table = read_labelled(path, text, label, encoding_errors=encoding_errors)
        return data.encode_labelled(self, table, unknown_ok=True)

    @torch.no_grad()
    def evaluate(self, sets: Encoded | list[tuple[str, Encoded]]) -> dict[str, Any]:
        """Accuracy, macro-F1, calibration (ECE, NLL, Brier), per-class P/R/F1 and the
        confusion matrix; given several named sets, over their union, plus one accuracy per
        set and their mean (metrics.labelled_sets_metrics)."""
        groups = sets if isinstance(sets, list) else [("", sets)]
        probs = [self.predict_ids(enc.ids) for _, enc in groups]
        gold = [[int(y) for y in enc.labels] for _, enc in groups]
        return labelled_sets_metrics(self.labels, [n for n, _ in groups], probs, gold)

    @classmethod
    def report(cls, metrics: dict[str, Any]) -> list[Any]:
        """Per-class table and confusion matrix for `seqtool eval`."""
        out = []
        if metrics.get("per_class"):
            out.append(prf_table("per class", "label", metrics["per_class"], f1="F1"))
        if conf := metrics.get("confusion"):
            out.append(confusion_table(conf["labels"], conf["matrix"]))
        return out

    # -- training setup ------------------------------------------------------------------------

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[Classifier, BucketedSource, Any]:
        """Read labelled files, build (or reuse) tokenizer and model; return (model, source, dev).

        Tables stay on disk (Arrow, then the token row cache): memory holds a label id, a
        length and an index per row, so files of millions of rows train with bounded memory."""
        opts, model, backbone, train_cfg, resume_header = setup
        from seqtool import checkpoint

        if opts.select not in SELECT:
            raise SeqtoolError(f"--select must be one of {', '.join(SELECT)}, not {opts.select!r}")
        if opts.calibration not in (*calibration.METHODS, "none"):
            raise SeqtoolError(
                f"--calibration must be length, temperature or none, not {opts.calibration!r}"
            )
        tt = data.read_training(
            opts.files, opts.dev, opts.text_column, opts.label_column, opts.dev_fraction,
            train_cfg.seed,
        )  # fmt: skip
        fwd, bwd, base = transfer.init_headers(opts.init_from)
        start = resume_header or base  # its tokenizer, config and labels
        if start is not None:
            tok = checkpoint.load_tokenizer(start)
            config = ClassifierConfig.from_dict(start.config)
        else:
            if fwd or bwd:  # the LM's tokenizer and shapes come along
                tok = transfer.lm_tokenizer(
                    fwd, bwd, backbone, opts.tokenizer, opts.vocab_size, opts.init_from
                )
            else:
                tok = data.build_tokenizer(
                    opts.tokenizer, tt.tables, tt.rows, model.get("lowercase", False),
                    opts.vocab_size, opts.tokenizer_sample, model.get("normalize", False),
                )  # fmt: skip
            backbone.setdefault("bidirectional", True)
            bb = BackboneConfig(vocab_size=tok.vocab_size, padding_idx=tok.pad_id, **backbone)
            config = ClassifierConfig(backbone=bb, num_labels=len(tt.classes), **model)
        clf = cls(config, tok, start.json("labels") if start is not None else tt.classes)
        clf.text_column, clf.label_column = opts.text_column, opts.label_column
        clf.calibration_method = opts.calibration
        if resume_header is None and base is not None:
            transfer.fine_tune_start(clf, base, tt.classes)
        elif resume_header is None and (fwd or bwd):
            transfer.init_from_lm(clf, fwd, bwd)
        train, dev = data.encode_training(clf, tt)
        if opts.score_column:
            train.scores = soft_targets.row_scores(tt.tables, opts.score_column)[tt.rows]
        collate = data.collate(train, tok.pad_id)
        source = BucketedSource(
            train.lengths, collate, train_cfg.batch_size, opts.max_tokens, train_cfg.seed
        )
        if tt.dev:
            sets = data.dev_sets(clf, tt.dev)
            dev = sets if len(sets) > 1 else sets[0][1]
            if len(sets) > 1 and opts.select == "mean":
                clf.main_metric = "accuracy_mean"  # the best checkpoint is picked on it
        return clf, source, dev
