"""Segmenter: tokenization and sentence splitting of raw text as a character tagger.
Characters -> bidirectional backbone -> linear head: one label per character (inside a token,
token end, multiword-token end, sentence end). Many-to-many with equal lengths.

Trained on CoNLL-U alone (data.segmenting): the raw text of `# text`, the token and multiword
ranges and the sentence ends. Text of any length is read in overlapping fixed windows, many
per forward pass, so memory stays bounded and the fused kernels stay busy.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool import checkpoint
from seqtool.backbone import Encoder
from seqtool.config import BackboneConfig, _Config, backbone_field, opt
from seqtool.data import segmenting as seg
from seqtool.data.conllu import Sentence, to_conllu
from seqtool.data.split import dev_count
from seqtool.errors import SeqtoolError
from seqtool.metrics import prf, prf_table, ud_scores
from seqtool.tasks.base import Setup, TaskModel


@dataclass(frozen=True)
class SegmenterOptions(_Config):
    """Train a tokenizer and sentence splitter (a character tagger) on CoNLL-U.

    Each character of the raw text (`# text`) is labelled: inside a token, token end,
    multiword-token end (`don't` = do + n't) or sentence end. The sentences of a paragraph
    are joined into running text, so sentence ends are learnt too; the words of multiword
    tokens come from a table learnt here. The model: a char-level bidirectional backbone.

    Examples (tiny sizes and few steps, so each runs in seconds):

      seqtool train segmenter corpora/pos-sample.conllu --hidden 32 --steps 20 --threads 1 -o seg.safetensors

      seqtool train segmenter corpora/pos-sample.conllu --threads 1 --time-budget 0.1 --ema 0.999 --save-dtype fp16 -o seg16.safetensors

      seqtool train segmenter corpora/pos-sample.conllu --cell gru --layers 1 --hidden 32 --steps 20 --threads 1 -o gru.safetensors
    """

    files: list[str] = opt(help="Training CoNLL-U file(s); - reads stdin.", argument=True)
    dev: str | None = opt(None, "Dev CoNLL-U file for evaluation.")
    dev_fraction: float = opt(
        0.05, "Hold out this tail fraction of paragraphs as dev without --dev."
    )
    encoding_errors: str = opt("strict", "strict (error with line and column) | replace | ignore.")
    min_char_count: int = opt(
        2, "Characters seen fewer times are read as a known one of their kind (letter, digit...)."
    )


@dataclass(frozen=True)
class SegmenterConfig(_Config):
    backbone: BackboneConfig = backbone_field(vocab_size=5, bidirectional=True)


class Segmenter(TaskModel):
    task = "segmenter"
    config_class = SegmenterConfig
    options_class = SegmenterOptions
    # the shipped model's: 2x32 beat 1x64 at the same speed (docs/segmenter.md)
    backbone_defaults = dict(cell="lstm", layers=2, hidden_size=32, embedding_dim=32,
                             dropout=0.25, embedding_dropout=0.15)  # fmt: skip
    backbone_fixed = ("bidirectional",)  # a label depends on the characters after it too
    train_options = ("seq_len",)
    option_defaults = {"seq_len": 256}
    eval_options = ("encoding_errors",)
    shipped_model = "segment-en.safetensors"
    main_metric = "words_f1"  # the words the tagger gets; sentence ends matter less
    higher_is_better = True

    def __init__(self, config: SegmenterConfig, tokenizer, mwt: seg.Multiwords) -> None:
        super().__init__(config, tokenizer)
        self.mwt = mwt  # multiword token -> its words
        self.backbone = Encoder(config.backbone)
        self.dropout = nn.Dropout(config.backbone.dropout)
        self.head = nn.Linear(self.backbone.output_size, len(seg.LABELS))
        self.encode = seg.char_encoder(tokenizer)

    def extra_metadata(self) -> dict[str, Any]:
        return {"mwt": self.mwt.to_json()}

    @classmethod
    def from_parts(cls, config: SegmenterConfig, tokenizer, extra: dict[str, Any]) -> Self:
        return cls(config, tokenizer, seg.Multiwords.from_json(extra.get("mwt")))

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (B, T) -> label logits (B, T, 4). No lengths: padding comes after the text,
        where training put it too, so the backward direction reads it as 'end of input'."""
        h, _ = self.backbone(chars)  # (B, T, 2H)
        return self.head(self.dropout(h))  # (B, T, 4)

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        labels, logits = batch["labels"], self(batch["chars"])  # (B, T), (B, T, 4)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), ignore_index=seg.IGNORE
        )
        return loss, int((labels != seg.IGNORE).sum())

    # -- inference -------------------------------------------------------------------------------

    @torch.inference_mode()
    def label(
        self,
        texts: Sequence[str],
        window: int = seg.WINDOW,
        context: int = seg.CONTEXT,
        max_chars: int = seg.MAX_CHARS,
    ) -> list[np.ndarray]:
        """A label per character of each text. Texts are cut into windows of at most `window`
        characters (each kept label sees `context` characters on both sides), batched by
        length, max_chars per forward pass: memory does not grow with a line's length."""
        ids = [self.encode(t) for t in texts]
        out = [np.zeros(len(t), np.int8) for t in texts]
        batches = seg.window_batches([len(t) for t in texts], window, context, max_chars)
        with self.evaluating() as device:
            for batch in batches:
                x = np.zeros((len(batch), batch[0][2] - batch[0][1]), np.int64)  # (B, T), 0: pad
                for r, (i, s, e, _, _) in enumerate(batch):
                    x[r, : e - s] = ids[i][s:e]
                logits = self(torch.from_numpy(x).to(device))  # (B, T, 4)
                best = logits.argmax(-1).to(torch.int8).cpu().numpy()  # (B, T)
                for r, (i, s, _, k0, k1) in enumerate(batch):
                    out[i][k0:k1] = best[r, k0 - s : k1 - s]
        return out

    def segment(self, texts: Sequence[str], split: bool = True, **options: Any) -> list:
        """Sentences of tokens (seg.Token) per text; split=False: each text is one sentence."""
        return seg.decode(texts, self.label(texts, **options), self.mwt, split)

    def sentences(self, texts: Sequence[str], split: bool = True) -> list[list[Sentence]]:
        """Per text, its sentences ready for the tagger and CoNLL-U (`# newpar` on the first
        of each text when split); an empty text has none."""
        return seg.sentences_of(texts, self.segment(texts, split), split)

    def predict(self, inputs: Sequence[str], split: bool = True, **options: Any) -> list:
        """The sentences of each text, each a list of words (multiword tokens expanded)."""
        segmented = self.segment(inputs, split, **options)
        return [[[w for t in sent for w in t.words] for sent in sents] for sents in segmented]

    def conllu(
        self, texts: Sequence[str], split: bool = True, segmented: list | None = None
    ) -> str:
        """The texts segmented, as CoNLL-U (no tags, a flat tree)."""
        segmented = self.segment(texts, split) if segmented is None else segmented
        sents = [s for group in seg.sentences_of(texts, segmented, split) for s in group]
        return "".join(to_conllu(s, ["_"] * len(s.words)) for s in sents)

    # -- evaluation ------------------------------------------------------------------------------

    def eval_data(self, path: str, encoding_errors: str = "strict") -> seg.SegmentData:
        """A CoNLL-U file: its paragraphs as raw text with gold labels, and the file for udeval."""
        from seqtool.data.text import display_name, read_text

        gold = read_text(path, encoding_errors)
        name = display_name(path)
        if not (paragraphs := list(seg.read_paragraphs(gold.splitlines(), name))):
            raise SeqtoolError(f"{name}: no sentences to evaluate on")
        return seg.SegmentData(paragraphs, gold)

    @torch.no_grad()
    def evaluate(self, data: seg.SegmentData) -> dict[str, Any]:
        """Tokens, Words and Sentences F1. In training, cheaply, over character offsets (a
        word: its token's span and its place among the token's words). With the gold file at
        hand (`seqtool eval`), by the CoNLL 2018 evaluation (udeval) of the raw paragraphs, and
        of the gold sentences one per line (lines_*)."""
        texts = [p.text for p in data.paragraphs]
        sets: dict[str, tuple[set, set]] = {k: (set(), set()) for k in ("tokens", "words", "sentences")}  # fmt: skip
        sides = (([p.labels for p in data.paragraphs], seg.Multiwords(self.mwt.table)),
                 (self.label(texts), self.mwt))  # fmt: skip
        for side, (labels, mwt) in enumerate(sides):
            segmented = seg.decode(texts, labels, mwt)  # side 1: the prediction, kept below
            for i, sents in enumerate(segmented):
                for sent in sents:
                    sets["sentences"][side].add((i, sent[0].start, sent[-1].end))
                    for t in sent:
                        sets["tokens"][side].add((i, t.start, t.end))
                        n = len(t.words)
                        sets["words"][side].update((i, t.start, t.end, k, n) for k in range(n))
        m: dict[str, Any] = {
            f"{k}_f1": prf(len(g & p), len(p), len(g))["f1"] for k, (g, p) in sets.items()
        }
        if data.gold is None:
            return m
        lines = [s for p in data.paragraphs for s in seg.sentence_texts(p)]
        ud = {
            "raw paragraphs": ud_scores(
                io.StringIO(data.gold), self.conllu(texts, True, segmented)
            ),
            "sentence per line": ud_scores(io.StringIO(data.gold), self.conllu(lines, False)),
        }
        for k in ("Tokens", "Words", "Sentences"):
            m[f"{k.lower()}_f1"] = ud["raw paragraphs"][k]["f1"]
        m["lines_tokens_f1"] = ud["sentence per line"]["Tokens"]["f1"]
        m["lines_words_f1"] = ud["sentence per line"]["Words"]["f1"]
        m["udeval"] = ud
        return m

    @classmethod
    def report(cls, metrics: dict[str, Any]) -> list[Any]:
        """udeval's precision / recall / F1 per input kind (raw paragraphs, one per line)."""
        rows = metrics.get("udeval") or {}
        keep = ("Tokens", "Words", "Sentences")
        return [prf_table(f"udeval: {mode}", "metric", {k: r[k] for k in keep if k in r})
                for mode, r in rows.items()]  # fmt: skip

    # -- training --------------------------------------------------------------------------------

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[Segmenter, Any, Any]:
        """Read CoNLL-U into running text with labels; build the char vocabulary, the
        multiword table and the model; return (model, random training windows, dev)."""
        from seqtool.tokenizers import CharTokenizer

        opts, model, backbone, train_cfg, resume_header = setup
        counts: Counter = Counter()
        paragraphs = seg.read_files(opts.files, opts.encoding_errors, counts)
        if opts.dev is not None:
            dev = seg.SegmentData(seg.read_files([opts.dev], opts.encoding_errors))
        else:  # the tail, when there are enough paragraphs to rank checkpoints
            cut = len(paragraphs) - dev_count(len(paragraphs), opts.dev_fraction, "paragraphs")
            dev = seg.SegmentData(paragraphs[cut:]) if cut < len(paragraphs) else None
            paragraphs = paragraphs[:cut]
        text, labels = seg.running_text(paragraphs)
        if resume_header is not None:
            config = SegmenterConfig.from_dict(resume_header.config)
            extra = {"mwt": resume_header.json("mwt")}
            segmenter = cls.from_parts(config, checkpoint.load_tokenizer(resume_header), extra)
        else:
            freq = Counter(text)
            chars = [c for c, n in freq.items() if n >= opts.min_char_count] or list(freq)
            tok = CharTokenizer(chars)
            bb = BackboneConfig(vocab_size=tok.vocab_size, bidirectional=True, **backbone)
            segmenter = cls(SegmenterConfig(bb, **model), tok, seg.Multiwords.learn(counts))
        ids = segmenter.encode(text)
        source = seg.WindowSource(
            ids, labels, train_cfg.batch_size, train_cfg.seq_len, train_cfg.seed
        )
        return segmenter, source, dev
