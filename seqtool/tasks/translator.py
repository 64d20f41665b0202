"""Encoder-decoder translator: the shared bidirectional `Encoder` reads the source, the backbone
`Decoder` (attention, input feeding, teacher forcing; `--attention none` is the lessons' plain
context-vector seq2seq) writes the target, and greedy and beam search step `Decoder.step`
through `decoding.search`. The pairs, their tokenizers and the data options: data/pairs.py."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import Tensor

from seqtool.backbone import Encoder, Recurrent
from seqtool.backbone.attention import ATTENTIONS
from seqtool.backbone.decoder import SCHEDULES, Decoder, DecoderState
from seqtool.config import BackboneConfig, _Config, backbone_field, opt
from seqtool.data import pairs
from seqtool.data.batching import eval_batches, pad
from seqtool.data.pairs import TranslationData, TranslatorOptions
from seqtool.decoding import Beam, Greedy, Hypothesis
from seqtool.errors import ConfigError, SeqtoolError
from seqtool.metrics import bleu_chrf
from seqtool.recipes.teacher_forcing import TeacherForcingSchedule
from seqtool.tasks.base import Setup, TaskModel


@dataclass(frozen=True)
class TranslatorConfig(_Config):
    encoder: BackboneConfig = backbone_field(bidirectional=True)
    attention: str = opt(
        "dot", "none (plain context-vector seq2seq) | additive (Bahdanau) | dot (Luong)."
    )
    input_feeding: bool = opt(
        False, "Feed the previous attentional vector to the decoder (Luong); steps the decoder."
    )
    decoder_layers: int = opt(1, "Decoder layers (0: as --layers).")
    decoder_hidden: int = opt(0, "Decoder hidden size (0: the encoder's output size).")
    label_smoothing: float = opt(0.1, "Label smoothing of the training loss.")
    teacher_forcing: float = opt(
        1.0,
        "Teacher-forcing ratio: probability of feeding the reference token rather than the "
        "model's own prediction (the final ratio when a schedule decays it from 1.0).",
    )
    teacher_forcing_schedule: str = opt(
        "constant", "constant | linear | inverse-sigmoid (decay from 1.0 to --teacher-forcing)."
    )
    shared_vocab: bool = opt(True, cli=False)  # one joint tokenizer, all embeddings tied
    target_vocab_size: int = opt(0, cli=False)  # separate target vocabulary when not shared
    output_dropout: float = opt(0.0, cli=False)  # --output-dropout, resolved
    max_length_ratio: float = opt(2.0, cli=False)  # decoding stops at ratio * source + 10

    def __post_init__(self) -> None:
        tf, schedule = self.teacher_forcing, self.teacher_forcing_schedule
        known = ", ".join(SCHEDULES)
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention must be none, additive or dot, not {self.attention!r}")
        if schedule not in SCHEDULES:
            raise ConfigError(f"teacher-forcing schedule must be one of {known}, not {schedule!r}")
        if not 0.0 <= tf <= 1.0:
            raise ConfigError(f"teacher forcing ratio must be in [0, 1], not {tf}")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.output_dropout < 1.0:
            raise ConfigError("label smoothing and output dropout must be in [0, 1)")
        if self.decoder_layers < 1 or self.decoder_hidden < 0 or self.max_length_ratio <= 0:
            raise ConfigError("decoder layers must be >= 1, decoder hidden >= 0, length ratio > 0")


class Translator(TaskModel):
    task = "translator"
    config_class = TranslatorConfig
    options_class = TranslatorOptions
    backbone_defaults = dict(layers=1, embedding_dim=256, dropout=0.2, embedding_dropout=0.1,
                             bidirectional=True)  # fmt: skip
    option_defaults = {"decoder_layers": 0}  # 0: as --layers
    eval_options = ("encoding_errors", "beam")
    shipped_model = "translate-en-de.safetensors"
    # Before the backbone Decoder its parts sat on the model and its Recurrent was `decoder`.
    legacy_keys = {"decoder.rnn.": "decoder.rnn.rnn.", "tgt_embedding.": "decoder.target_embedding.",
                   "bridge.": "decoder.bridge.", "attention.": "decoder.attention.",
                   "combine.": "decoder.combine.", "out_bias": "decoder.out_bias"}  # fmt: skip
    main_metric = "bleu"
    higher_is_better = True

    def __init__(self, config: TranslatorConfig, tokenizer: Any, target_tokenizer: Any = None):
        super().__init__(config, tokenizer)
        enc = config.encoder
        self.target_tokenizer = tokenizer if config.shared_vocab else target_tokenizer
        if self.target_tokenizer is None:
            raise SeqtoolError("a translator with separate vocabularies needs a target tokenizer")
        self.encoder = Encoder(enc)
        K = self.encoder.output_size
        V = enc.vocab_size if config.shared_vocab else config.target_vocab_size
        tied = self.encoder.embedding if config.shared_vocab else None  # three-way tying
        self.decoder = Decoder(V, enc.embedding_dim, K, config.decoder_hidden or K,
                               config.decoder_layers, enc.cell, enc.dropout, config.attention,
                               config.input_feeding, config.output_dropout, tied,
                               enc.embedding_dropout)  # fmt: skip
        self.decoder.teacher_forcing = config.teacher_forcing  # a schedule sets it per step

    def start(self, src: Tensor, src_len: Tensor) -> DecoderState:
        """src (B, S) ids, src_len (B,) -> the decoder state before the first target token."""
        out, state = self.encoder(src, src_len)  # (B, S, K)
        positions = torch.arange(src.size(1), device=src.device)[None, :]  # (1, S)
        mask = positions < src_len.to(src.device)[:, None]  # (B, S)
        return self.decoder.start(out, mask, self.encoder.summary(state))

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor, tgt_out: Tensor | None = None,
                teacher_forcing: float = 1.0, **loss: Any) -> tuple[Tensor | None, Tensor | None]:  # fmt: skip
        """src (B, S), tgt_in (B, T) = BOS + target -> (logits (B, T, V) or None, loss); loss:
        Decoder.forward's smoothing and reduction."""
        return self.decoder(self.start(src, src_len), tgt_in, tgt_out, teacher_forcing, **loss)

    def forward_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
        ratio = self.decoder.teacher_forcing if self.training else 1.0
        tensors = (batch[k] for k in ("src", "src_len", "tgt_in", "tgt_out"))
        _, loss = self(*tensors, ratio, smoothing=self.config.label_smoothing)
        return loss, int((batch["tgt_out"] != 0).sum())

    def callbacks(self) -> list[Any]:
        return [TeacherForcingSchedule()]  # scheduled sampling, when the config asks for it

    def max_lengths(self, src_len: Tensor, ratio: float | None = None) -> Tensor:
        """Output tokens allowed per sentence: ratio (default: the model's) * source + 10."""
        ratio = self.config.max_length_ratio if ratio is None else ratio
        return (src_len.float() * ratio).long() + 10

    @torch.inference_mode()
    def decode_ids(self, src: list[list[int]], beam: int = 1, alpha: float = 1.0, n_best: int = 1,
                   min_steps: int = 0, record: list[Tensor] | None = None,
                   max_ratio: float | None = None) -> list[list[Hypothesis]]:  # fmt: skip
        """Source id lists (each ending in EOS) -> n_best hypotheses each. Greedy when beam is 1
        (then `record` collects every step's log-probs, for the free-running loss)."""
        x, lengths = pad(src)
        device = self.decoder.out_bias.device
        st = self.start(x.to(device), lengths.to(device))
        ends = (len(src), self.target_tokenizer.bos_id, self.target_tokenizer.eos_id)
        max_len = self.max_lengths(lengths, max_ratio)
        if beam == 1:
            hyps = self.decoder.search(st, Greedy(*ends, max_len, min_steps, alpha), record)
            return [[h] for h in hyps]
        return self.decoder.search(st, Beam(*ends, max_len, beam, alpha, n_best))

    def encode_source(self, text: str) -> list[int]:
        return self.tokenizer.encode(text) + [self.tokenizer.eos_id]

    @torch.inference_mode()
    def translate(self, lines: list[str], beam: int = 5, alpha: float = 1.0, n_best: int = 1,
                  batch_size: int = 64, max_ratio: float | None = None) -> list[list[dict]]:  # fmt: skip
        """Sentences -> per sentence n_best dicts {text, score, logprob}, best first. An empty
        (or blank) line translates to an empty line."""
        out = [[{"text": "", "score": 0.0, "logprob": 0.0}] for _ in lines]
        todo = [i for i, s in enumerate(lines) if s.strip()]
        ids = [self.encode_source(lines[i].strip()) for i in todo]
        dec = self.target_tokenizer.decode
        for idx in eval_batches([len(s) for s in ids], batch_size):
            hyps = self.decode_ids([ids[i] for i in idx], beam, alpha, n_best, max_ratio=max_ratio)
            for i, hs in zip(idx, hyps, strict=True):
                out[todo[i]] = [dict(text=dec(h.ids), score=h.score, logprob=h.logprob) for h in hs]
        return out

    def predict(self, inputs: list[str], **options: Any) -> list[list[dict]]:
        return self.translate(inputs, **options)  # n-best per line; options: translate()'s

    def eval_data(self, path: str, encoding_errors: str = "strict", beam: int = 5,
                  length_penalty: float = 1.0) -> TranslationData:  # fmt: skip
        toks = (self.tokenizer, self.target_tokenizer)
        return pairs.read_held_out(path, *toks, encoding_errors, beam, length_penalty)

    @torch.no_grad()
    def evaluate(self, data: TranslationData) -> dict[str, float]:
        """BLEU and chrF (sacreBLEU, detokenized) of greedy or beam output, plus dev loss both
        teacher-forced (what training sees) and free-running (fed its own predictions, as in
        translation), in nats per target token without label smoothing."""
        hyps = [""] * len(data.src)
        tf_sum = free_sum = 0.0
        ntok = 0
        for idx, b in data.batches(self.decoder.out_bias.device):
            tgt_out = b["tgt_out"]  # (B, T)
            tf_sum += self(b["src"], b["src_len"], b["tgt_in"], tgt_out, reduction="sum")[1].item()
            ntok += int((tgt_out != 0).sum())
            src, T, record = [data.src[i] for i in idx], tgt_out.size(1), []
            found = self.decode_ids(src, 1, data.alpha, 1, T, record)  # greedy, >= T steps
            logp = torch.stack(record[:T], dim=1).flatten(0, 1)  # (B * T, V)
            gold = tgt_out.cpu().flatten()
            free_sum += F.nll_loss(logp, gold, ignore_index=0, reduction="sum").item()
            if data.beam != 1:
                found = self.decode_ids(src, data.beam, data.alpha)
            for i, hs in zip(idx, found, strict=True):
                hyps[i] = self.target_tokenizer.decode(hs[0].ids)
        bleu, chrf = bleu_chrf(hyps, data.refs)
        tf, free = tf_sum / max(ntok, 1), free_sum / max(ntok, 1)
        return dict(bleu=bleu, chrf=chrf, loss_teacher_forced=tf, loss_free_running=free,
                    ppl_teacher_forced=math.exp(min(tf, 50.0)), beam=int(data.beam),
                    sentences=len(hyps))  # fmt: skip

    @classmethod
    def report(cls, metrics: dict[str, Any]) -> list[Any]:
        """The line `seqtool eval` prints under its table."""
        from rich.text import Text

        m = metrics
        return [Text(f"BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}  (sacreBLEU, detokenized, beam "
                     f"{int(m['beam'])}); dev loss teacher-forced {m['loss_teacher_forced']:.3f} "
                     f"vs free-running {m['loss_free_running']:.3f} nats/token")]  # fmt: skip

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[Self, Any, Any]:
        """Pairs (kept on disk), tokenizer(s) and model -> (model, train source, dev data)."""
        opts, model, backbone, train_cfg, resume_header = setup

        def build(src_tok: Any, tgt_tok: Any) -> Self:
            enc = BackboneConfig(vocab_size=src_tok.vocab_size, **backbone)
            sep, dropout = opts.separate_vocab, opts.output_dropout
            derived = dict(encoder=enc, decoder_layers=model.get("decoder_layers") or enc.layers,
                           shared_vocab=not sep, target_vocab_size=tgt_tok.vocab_size if sep else 0,
                           output_dropout=enc.dropout if dropout is None else dropout)  # fmt: skip
            return cls(TranslatorConfig(**{**model, **derived}), src_tok, tgt_tok)

        resumed = None if resume_header is None else (lambda: cls.load(resume_header).train())
        out = pairs.training_pairs(opts, train_cfg.batch_size, train_cfg.seed, build, resumed)
        random.seed(train_cfg.seed)  # Python's RNG: one state, whatever the setup consumed
        return out

    def extra_metadata(self) -> dict[str, Any]:  # a separate target vocabulary's tokenizer
        return pairs.target_metadata(None if self.config.shared_vocab else self.target_tokenizer)

    @classmethod
    def from_parts(cls, config: TranslatorConfig, tokenizer: Any, extra: dict[str, Any]) -> Self:
        target = None if config.shared_vocab else pairs.target_from_metadata(extra)
        return cls(config, tokenizer, target)

    def inspect_inputs(self, text: str) -> tuple[list[str], Tensor, Recurrent]:
        ids = self.encode_source(text)
        tokens = [self.tokenizer.id_to_piece(i) for i in ids]
        return tokens, self.encoder.embed(torch.tensor([ids])), self.encoder.rnn
