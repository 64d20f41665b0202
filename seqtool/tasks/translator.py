"""Encoder-decoder translator: the shared bidirectional backbone encodes, the same `Recurrent`
class decodes step by step with carried state, with attention and optional input feeding.

Training with teacher forcing 1.0 and no input feeding runs the decoder over the whole target
at once through the fused module, then attends for every position in one batched call. With a
lower ratio (the model's own previous prediction is fed back with probability 1 - ratio) or
with input feeding, the decoder steps through the same fused module one token at a time.
Decoding (greedy, beam search) uses the low-overhead `Stepper` over the same weights.

`--attention none` is the lessons' plain seq2seq: the encoder's final state starts the
decoder and is fed, as a fixed context vector, to every decoder step and to the output.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone import Backbone, Recurrent, State, TokenEmbedding
from seqtool.backbone.attention import ATTENTIONS, Attention
from seqtool.config import BackboneConfig, _Config
from seqtool.decoding import Hypothesis, beam_search, greedy
from seqtool.errors import ConfigError, SeqtoolError
from seqtool.tasks.base import ModuleTask
from seqtool.tokenizers.base import BOS, EOS
from seqtool.training.callbacks import Callback

SCHEDULES = ("constant", "linear", "inverse-sigmoid")
# A bpe/unigram tokenizer trained here learns from at most this many characters of the
# training pairs (every k-th pair): sentencepiece needs ~20 bytes of memory per character.
TOKENIZER_SAMPLE_CHARS = 10_000_000


@dataclass(frozen=True)
class TranslatorConfig(_Config):
    encoder: BackboneConfig = field(
        default_factory=lambda: BackboneConfig(vocab_size=1, bidirectional=True)
    )
    decoder_layers: int = 1
    decoder_hidden: int = 0  # 0: the encoder's output size (2H when bidirectional)
    attention: str = "dot"  # none | additive | dot
    input_feeding: bool = False
    shared_vocab: bool = True  # one joint tokenizer; source, target and output embeddings tied
    target_vocab_size: int = 0  # separate target vocabulary when not shared
    output_dropout: float = 0.0
    label_smoothing: float = 0.1
    teacher_forcing: float = 1.0  # final ratio; schedules decay from 1.0 to it
    teacher_forcing_schedule: str = "constant"
    max_length_ratio: float = 2.0  # decoding stops at ratio * source tokens + 10

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"attention must be none, additive or dot, not {self.attention!r}")
        if self.teacher_forcing_schedule not in SCHEDULES:
            raise ConfigError(
                f"teacher-forcing schedule must be one of {', '.join(SCHEDULES)}, "
                f"not {self.teacher_forcing_schedule!r}"
            )
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError(
                f"teacher forcing ratio must be in [0, 1], not {self.teacher_forcing}"
            )
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.output_dropout < 1.0:
            raise ConfigError("label smoothing and output dropout must be in [0, 1)")
        if self.decoder_layers < 1 or self.decoder_hidden < 0 or self.max_length_ratio <= 0:
            raise ConfigError("decoder layers must be >= 1, decoder hidden >= 0, length ratio > 0")


def teacher_forcing_ratio(cfg: TranslatorConfig, step: int, total: int) -> float:
    """The ratio at `step` of `total`: constant, or decaying from 1.0 to cfg.teacher_forcing
    linearly or along Bengio et al.'s (2015) inverse sigmoid k / (k + exp(i / k))."""
    final = cfg.teacher_forcing
    if cfg.teacher_forcing_schedule == "constant" or total <= 1:
        return final
    p = min(1.0, step / total)
    if cfg.teacher_forcing_schedule == "linear":
        return 1.0 - (1.0 - final) * p
    # k chosen so the curve crosses its midpoint half way: k * ln(k) = 50 in steps of total / 100
    # (the shape does not depend on the run's length); rescaled to run exactly from 1 to 0.
    k = 12.0
    for _ in range(50):  # Newton on k ln k = 50
        k -= (k * math.log(k) - 50) / (math.log(k) + 1)

    def f(i: float) -> float:
        return k / (k + math.exp(i / k))

    decay = (f(100 * p) - f(100)) / (f(0) - f(100))
    return final + (1.0 - final) * decay


class TeacherForcingSchedule(Callback):
    """Sets the model's teacher-forcing ratio from the trainer's step (resume-safe)."""

    def on_train_start(self, trainer: Any) -> None:
        self._set(trainer)

    def on_step_end(self, trainer: Any, loss: float | None) -> None:
        self._set(trainer)

    def _set(self, trainer: Any) -> None:
        m = trainer.model
        m.teacher_forcing = teacher_forcing_ratio(m.config, trainer.step, trainer.total_steps)


@dataclass
class TranslationData:
    """Encoded held-out pairs plus the raw references BLEU is computed against."""

    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]
    beam: int = 1
    alpha: float = 1.0
    batch_size: int = 64


class Translator(ModuleTask):
    task = "translator"
    shipped_model = "translate-en-de.safetensors"
    config_class = TranslatorConfig
    main_metric = "bleu"
    higher_is_better = True

    def __init__(
        self, config: TranslatorConfig, tokenizer: Any, target_tokenizer: Any = None
    ) -> None:
        super().__init__(config, tokenizer)
        enc = config.encoder
        self.target_tokenizer = tokenizer if config.shared_vocab else target_tokenizer
        if self.target_tokenizer is None:
            raise SeqtoolError("a translator with separate vocabularies needs a target tokenizer")
        self.encoder = Backbone(enc)
        E, K = enc.embedding_dim, self.encoder.output_size
        H = config.decoder_hidden or K
        V = enc.vocab_size if config.shared_vocab else config.target_vocab_size
        # With a joint vocabulary the encoder's embedding is reused (three-way tying).
        self.tgt_embedding = (
            None if config.shared_vocab else TokenEmbedding(V, E, 0, enc.embedding_dropout)
        )
        extra_in = K if config.attention == "none" else (E if config.input_feeding else 0)
        self.decoder = Recurrent(
            E + extra_in, H, config.decoder_layers, enc.cell, False, enc.dropout
        )
        self.bridge = nn.Linear(K, H * config.decoder_layers)
        self.attention = None if config.attention == "none" else Attention(config.attention, H, K)
        self.combine = nn.Linear(H + K, E)  # attentional vector h~ = tanh(W [h; context])
        self.dropout = nn.Dropout(config.output_dropout)
        self.out_bias = nn.Parameter(torch.zeros(V))
        self.teacher_forcing = config.teacher_forcing  # set per step by TeacherForcingSchedule

    # -- pieces ----------------------------------------------------------------------------------

    @property
    def embedding(self) -> TokenEmbedding:
        return self.encoder.embedding if self.tgt_embedding is None else self.tgt_embedding

    def encode(
        self, src: torch.Tensor, src_len: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, State]:
        """src (B, S) -> outputs (B, S, K), mask (B, S), summary (B, K), decoder start state."""
        out, state = self.encoder(src, src_len)  # (B, S, K)
        h = state[0]  # (layers * D, B, H_enc)
        D = self.encoder.rnn.num_directions
        summary = torch.cat([h[-D + d] for d in range(D)], dim=-1)  # (B, K): top layer, both ways
        B, L = src.size(0), self.config.decoder_layers
        h0 = (
            torch.tanh(self.bridge(summary)).view(B, L, -1).transpose(0, 1).contiguous()
        )  # (L, B, H)
        init = (h0, torch.zeros_like(h0)) if self.decoder.cell == "lstm" else (h0,)
        mask = (
            torch.arange(src.size(1), device=src.device)[None, :] < src_len.to(src.device)[:, None]
        )
        return out, mask, summary, init

    def _output(self, h: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (..., H), context (..., K) -> attentional vector (..., E), logits (..., V)."""
        att = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        logits = F.linear(self.dropout(att), self.embedding.weight, self.out_bias)
        return att, logits

    def _step(self, run, tokens, st: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """One decoder step: tokens (N,) -> logits (N, V). `run` is the fused module's trainable
        `Recurrent.step` in training and the inference `Stepper.step` in decoding."""
        x = self.embedding(tokens)  # (N, E)
        if self.attention is None:
            x = torch.cat([x, st["summary"]], dim=-1)
        elif self.config.input_feeding:
            x = torch.cat([x, st["feed"]], dim=-1)
        h, rnn = run(x, st["rnn"])  # (N, H)
        if self.attention is None:
            context = st["summary"]
        else:
            context, _ = self.attention(h, st["enc"], st["mask"], st["keys"])  # (N, K)
        att, logits = self._output(h, context)
        return logits, {**st, "rnn": rnn, "feed": att}

    def _start(self, src: torch.Tensor, src_len: torch.Tensor) -> dict[str, Any]:
        enc, mask, summary, init = self.encode(src, src_len)
        keys = None if self.attention is None else self.attention.project_keys(enc)
        feed = enc.new_zeros(src.size(0), self.config.encoder.embedding_dim)
        return {
            "rnn": init,
            "enc": enc,
            "mask": mask,
            "keys": keys,
            "summary": summary,
            "feed": feed,
        }

    @staticmethod
    def _reorder(st: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        out = {
            k: (None if v is None else v.index_select(0, index))
            for k, v in st.items()
            if k != "rnn"
        }
        out["rnn"] = tuple(s.index_select(1, index) for s in st["rnn"])  # (L, N, H)
        return out

    # -- training --------------------------------------------------------------------------------

    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        tgt_in: torch.Tensor,
        tgt_out: torch.Tensor | None = None,
        teacher_forcing: float = 1.0,
        smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """src (B, S), tgt_in (B, T) = BOS + target -> (logits (B, T, V), loss). With tgt_out
        (target + EOS, 0-padded) the loss is returned and, on the fused path, logits are only
        computed for real target positions (the V-wide output layer is most of the cost)."""
        st = self._start(src, src_len)
        if teacher_forcing >= 1.0 and (self.attention is None or not self.config.input_feeding):
            # Whole target at once through the fused module: inputs do not depend on outputs.
            x = self.embedding(tgt_in)  # (B, T, E)
            T = x.size(1)
            if self.attention is None:
                context = st["summary"].unsqueeze(1).expand(-1, T, -1)  # (B, T, K)
                x = torch.cat([x, context], dim=-1)
            h, _ = self.decoder(x, None, st["rnn"])  # (B, T, H); padding sits after the target
            if self.attention is not None:
                context, _ = self.attention(h, st["enc"], st["mask"], st["keys"])  # (B, T, K)
            if tgt_out is None:
                return self._output(h, context)[1], None
            real = tgt_out != 0  # (B, T)
            logits = self._output(h[real], context[real])[1]  # (N, V)
            loss = F.cross_entropy(
                logits.float(), tgt_out[real], label_smoothing=smoothing, reduction=reduction
            )
            return None, loss
        # Step by step; where the coin says so the model's own argmax is fed back.
        logits_all = []
        cur = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, st = self._step(self.decoder.step, cur, st)  # (B, V)
            logits_all.append(logits)
            if t + 1 < tgt_in.size(1):
                if teacher_forcing >= 1.0:
                    cur = tgt_in[:, t + 1]
                else:
                    own = logits.detach().argmax(-1)
                    force = torch.rand(own.shape, device=own.device) < teacher_forcing
                    cur = torch.where(force, tgt_in[:, t + 1], own)
        logits = torch.stack(logits_all, dim=1)  # (B, T, V)
        if tgt_out is None:
            return logits, None
        loss = F.cross_entropy(
            logits.float().flatten(0, 1),
            tgt_out.flatten(),
            ignore_index=0,
            label_smoothing=smoothing,
            reduction=reduction,
        )
        return logits, loss

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        ratio = self.teacher_forcing if self.training else 1.0
        _, loss = self(
            batch["src"],
            batch["src_len"],
            batch["tgt_in"],
            batch["tgt_out"],
            ratio,
            self.config.label_smoothing,
        )
        return loss, int((batch["tgt_out"] != 0).sum())

    # -- decoding --------------------------------------------------------------------------------

    def max_lengths(self, src_len: torch.Tensor, ratio: float | None = None) -> torch.Tensor:
        """Output tokens allowed per sentence: ratio (default: the model's) * source + 10."""
        ratio = self.config.max_length_ratio if ratio is None else ratio
        return (src_len.float() * ratio).long() + 10

    @torch.inference_mode()
    def decode_ids(
        self,
        src: list[list[int]],
        beam: int = 1,
        alpha: float = 1.0,
        n_best: int = 1,
        min_steps: int = 0,
        record: list[torch.Tensor] | None = None,
        max_ratio: float | None = None,
    ) -> list[list[Hypothesis]]:
        """Source id lists (each ending in EOS) -> n_best hypotheses each. Greedy when beam is 1
        (then `record` collects every step's log-probs, for the free-running loss)."""
        from seqtool.data.batching import pad

        device = self.out_bias.device
        x, lengths = pad(src)
        st = self._start(x.to(device), lengths.to(device))
        stepper = self.decoder.stepper()

        def step(tokens: torch.Tensor, state: dict[str, Any]):
            logits, state = self._step(stepper.step, tokens.to(device), state)
            logp = logits.float().log_softmax(-1).cpu()  # (N, V)
            if record is not None:
                record.append(logp)
            return logp, state

        tok = self.target_tokenizer
        max_len = self.max_lengths(lengths, max_ratio)
        if beam == 1:
            hyps = greedy(step, st, len(src), tok.bos_id, tok.eos_id, max_len, alpha, min_steps)
            return [[h] for h in hyps]
        return beam_search(
            step, self._reorder, st, len(src), tok.bos_id, tok.eos_id, max_len, beam, alpha, n_best
        )

    def encode_source(self, text: str) -> list[int]:
        return self.tokenizer.encode(text) + [self.tokenizer.eos_id]

    @torch.inference_mode()
    def translate(
        self,
        lines: list[str],
        beam: int = 5,
        alpha: float = 1.0,
        n_best: int = 1,
        batch_size: int = 64,
        max_ratio: float | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Sentences -> per sentence n_best dicts {text, score, logprob}, best first. An empty
        (or blank) line translates to an empty line."""
        from seqtool.data.batching import eval_batches

        out: list[list[dict[str, Any]]] = [[] for _ in lines]
        todo = [i for i, s in enumerate(lines) if s.strip()]
        ids = [self.encode_source(lines[i].strip()) for i in todo]
        for idx in eval_batches([len(s) for s in ids], batch_size):
            hyps = self.decode_ids([ids[i] for i in idx], beam, alpha, n_best, max_ratio=max_ratio)
            for i, hs in zip(idx, hyps, strict=True):
                out[todo[i]] = [
                    {
                        "text": self.target_tokenizer.decode(h.ids),
                        "score": h.score,
                        "logprob": h.logprob,
                    }
                    for h in hs
                ]
        for i, s in enumerate(lines):
            if not s.strip():
                out[i] = [{"text": "", "score": 0.0, "logprob": 0.0}]
        return out

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, data: TranslationData) -> dict[str, float]:
        """BLEU and chrF (sacreBLEU, detokenized) of greedy or beam output, plus dev loss both
        teacher-forced (what training sees) and free-running (fed its own predictions, as in
        translation), in nats per target token without label smoothing."""
        import sacrebleu

        from seqtool.data.batching import eval_batches, pad

        device = self.out_bias.device
        hyps = [""] * len(data.src)
        tf_sum = free_sum = 0.0
        ntok = 0
        for idx in eval_batches([len(s) for s in data.src], data.batch_size):
            src, src_len = pad([data.src[i] for i in idx])
            tgt_in, _ = pad([[BOS] + data.tgt[i] for i in idx])
            tgt_out, _ = pad([data.tgt[i] + [EOS] for i in idx])
            src, src_len, tgt_in, tgt_out = (t.to(device) for t in (src, src_len, tgt_in, tgt_out))
            tf_sum += self(src, src_len, tgt_in, tgt_out, reduction="sum")[1].item()
            ntok += int((tgt_out != 0).sum())
            record: list[torch.Tensor] = []
            greedy_hyps = self.decode_ids(
                [data.src[i] for i in idx], 1, data.alpha, 1, tgt_out.size(1), record
            )
            logp = torch.stack(record[: tgt_out.size(1)], dim=1)  # (B, T, V)
            free_sum += F.nll_loss(
                logp.flatten(0, 1), tgt_out.cpu().flatten(), ignore_index=0, reduction="sum"
            ).item()
            found = (
                greedy_hyps
                if data.beam == 1
                else self.decode_ids([data.src[i] for i in idx], data.beam, data.alpha)
            )
            for i, hs in zip(idx, found, strict=True):
                hyps[i] = self.target_tokenizer.decode(hs[0].ids)
        bleu = sacrebleu.corpus_bleu(hyps, [data.refs])
        chrf = sacrebleu.corpus_chrf(hyps, [data.refs])
        tf, free = tf_sum / max(ntok, 1), free_sum / max(ntok, 1)
        return {
            "bleu": bleu.score,
            "chrf": chrf.score,
            "loss_teacher_forced": tf,
            "loss_free_running": free,
            "ppl_teacher_forced": math.exp(min(tf, 50.0)),
            "beam": float(data.beam),
            "sentences": float(len(hyps)),
        }

    # -- checkpoint ------------------------------------------------------------------------------

    def extra_metadata(self) -> dict[str, Any]:
        if self.config.shared_vocab:
            return {}
        tok = self.target_tokenizer
        return {
            "target_tokenizer": {
                "kind": tok.kind,
                "data": base64.b64encode(tok.to_bytes()).decode(),
            }
        }

    @classmethod
    def from_parts(
        cls, config: TranslatorConfig, tokenizer: Any, extra: dict[str, Any]
    ) -> Translator:
        target = None
        if not config.shared_vocab:
            from seqtool import tokenizers

            t = extra.get("target_tokenizer") or {}
            try:
                target = tokenizers.from_bytes(t["kind"], base64.b64decode(t["data"]))
            except (KeyError, TypeError, ValueError) as e:
                raise SeqtoolError("checkpoint: target tokenizer is missing or damaged") from e
        return cls(config, tokenizer, target)

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        ids = self.encode_source(text)
        tokens = [self.tokenizer.id_to_piece(i) for i in ids]
        return tokens, self.encoder.embedding(torch.tensor([ids])), self.encoder.rnn


# -- data ------------------------------------------------------------------------------------


def _encode_pairs(model: Translator, src: list[str], tgt: list[str]) -> tuple[list, list]:
    return (
        [model.encode_source(s) for s in src],
        [model.target_tokenizer.encode(t) for t in tgt],
    )


def eval_data(model: Translator, src: list[str], tgt: list[str], beam: int = 1, alpha: float = 1.0):
    keep = [i for i, s in enumerate(src) if s.strip()]
    s_ids, t_ids = _encode_pairs(model, [src[i] for i in keep], [tgt[i] for i in keep])
    return TranslationData(s_ids, t_ids, [tgt[i] for i in keep], beam, alpha)


class _Collate:
    """Batches from id lists, or from `Rows` on disk (read as they are batched)."""

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
        self.src, self.tgt = src, tgt

    def __call__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        from seqtool.data.batching import pad

        src, src_len = pad([self.src[i] for i in idx])
        tgt = [list(map(int, self.tgt[i])) for i in idx]
        tgt_in, _ = pad([[BOS, *t] for t in tgt])  # BOS + target
        tgt_out, _ = pad([[*t, EOS] for t in tgt])  # target + EOS
        return {"src": src, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}


def build_tokenizers(spec: str, src: list[str], tgt: list[str], vocab_size: int, separate: bool):
    from seqtool import tokenizers

    if spec not in tokenizers.SPECS:  # a tokenizer file serves both sides
        tok = tokenizers.load(spec)
        return tok, (tok if not separate else None)
    if separate:
        return tokenizers.build(spec, src, vocab_size), tokenizers.build(spec, tgt, vocab_size)
    tok = tokenizers.build(spec, src + tgt, vocab_size)
    return tok, tok


def prepare(
    train_cfg: Any,
    backbone: dict,
    files: list[str] | None = None,
    source: str | None = None,
    target: str | None = None,
    dev: str | None = None,
    dev_fraction: float = 0.0,
    tokenizer: str = "bpe",
    vocab_size: int = 8000,
    separate_vocab: bool = False,
    attention: str = "dot",
    input_feeding: bool = False,
    decoder_layers: int = 0,
    decoder_hidden: int = 0,
    output_dropout: float | None = None,
    label_smoothing: float = 0.1,
    teacher_forcing: float = 1.0,
    teacher_forcing_schedule: str = "constant",
    max_length: int = 100,
    encoding_errors: str = "strict",
    tokenizer_sample: int = TOKENIZER_SAMPLE_CHARS,
    resume_header: Any = None,
    **_: Any,
):
    """Read pairs, build tokenizer(s) and model; return (model, train source, dev data).

    The pairs stay on disk: they are checked in one streamed pass and tokenized into the row
    cache ($SEQTOOL_CACHE/rows); memory holds a few numbers per pair, so millions of pairs
    train with bounded memory."""
    from seqtool.data.batching import BucketedSource
    from seqtool.data.parallel import PairFile, read_pairs

    if files and len(files) > 1:
        raise SeqtoolError("give one TSV file (or --source and --target)")
    pairs = PairFile(files[0] if files else None, source, target, encoding_errors)
    try:
        n = len(pairs)
        dev_src = dev_tgt = None
        if dev is not None:
            dev_src, dev_tgt = read_pairs(dev, encoding_errors=encoding_errors)
        elif dev_fraction > 0:
            if not 0 < dev_fraction < 1:
                raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {dev_fraction}")
            n = max(1, int(len(pairs) * (1 - dev_fraction)))
            dev_src, dev_tgt = pairs.pairs(n)  # the tail
        if resume_header is not None:  # same tokenizers and config; the trainer loads weights
            model = Translator.load(resume_header).train()
        else:
            src_tok, tgt_tok = _train_tokenizers(
                tokenizer, pairs, n, vocab_size, separate_vocab, tokenizer_sample
            )
            if tgt_tok is None:
                raise SeqtoolError(
                    "--separate-vocab needs bpe or unigram (trained here), not a file"
                )
            enc = BackboneConfig(vocab_size=src_tok.vocab_size, **backbone)
            config = TranslatorConfig(
                encoder=enc,
                decoder_layers=decoder_layers or enc.layers,
                decoder_hidden=decoder_hidden,
                attention=attention,
                input_feeding=input_feeding,
                shared_vocab=not separate_vocab,
                target_vocab_size=0 if not separate_vocab else tgt_tok.vocab_size,
                output_dropout=enc.dropout if output_dropout is None else output_dropout,
                label_smoothing=label_smoothing,
                teacher_forcing=teacher_forcing,
                teacher_forcing_schedule=teacher_forcing_schedule,
            )
            model = Translator(config, src_tok, tgt_tok)
        s_ids, t_ids = _encode_pair_file(model, pairs)
        nonempty = pairs.nonempty
    finally:
        pairs.close()
    s_len, t_len = s_ids.lengths[:n], t_ids.lengths[:n]
    keep = np.flatnonzero(nonempty[:n] & (s_len <= max_length) & (t_len < max_length))
    if not len(keep):
        raise SeqtoolError(
            f"no training pairs with both sides non-empty and <= {max_length} tokens"
        )
    lengths = np.maximum(s_len[keep], t_len[keep] + 1)
    source_batches = BucketedSource(
        lengths,
        _Collate(s_ids.select(keep), t_ids.select(keep)),
        train_cfg.batch_size,
        seed=train_cfg.seed,
    )
    dev_data = None
    if dev_src:
        dev_data = eval_data(model, dev_src, dev_tgt, beam=1)
    random.seed(train_cfg.seed)
    return model, source_batches, dev_data


def _train_tokenizers(
    spec: str, pairs: Any, n: int, vocab_size: int, separate: bool, sample: int
) -> tuple[Any, Any]:
    """build_tokenizers on the first n pairs of a PairFile, streamed: characters from every
    pair; sentencepiece from every pair when they hold at most `sample` characters (0: no
    limit), else from every k-th pair, so its memory stays bounded."""
    from seqtool import tokenizers

    if spec not in tokenizers.SPECS:
        return build_tokenizers(spec, [], [], vocab_size, separate)
    if spec == "char":
        src_chars: set[str] = set()
        tgt_chars: set[str] = set()
        seen = 0
        for src, tgt in pairs.iter_chunks():
            src, tgt = src[: n - seen], tgt[: n - seen]
            src_chars.update("".join(src))
            tgt_chars.update("".join(tgt))
            seen += len(src)
        if separate:
            return tokenizers.CharTokenizer.train(
                ["".join(src_chars)]
            ), tokenizers.CharTokenizer.train(["".join(tgt_chars)])
        tok = tokenizers.CharTokenizer.train(["".join(src_chars | tgt_chars)])
        return tok, tok
    step = max(1, -(-pairs.chars // sample)) if sample > 0 else 1
    src, tgt = pairs.pairs(0, n, step)
    return build_tokenizers(spec, src, tgt, vocab_size, separate)


def _encode_pair_file(model: Translator, pairs: Any) -> tuple[Any, Any]:
    """Source ids (+ EOS) and target ids of every pair as `Rows`, from the row cache:
    tokenized a chunk at a time on first use, reused by later runs on the same data."""
    from seqtool.data import rows

    def side(name: str, tok: Any, encode: Any) -> Any:
        key = rows.cache_key("translator", name, pairs.content_hash(), tok.kind, tok.to_bytes())

        def build(writer: Any) -> None:
            for chunk in pairs.iter_chunks():
                writer.add(encode(chunk))

        return rows.Rows([rows.cached(key, tok.vocab_size - 1, build)])

    eos = model.tokenizer.eos_id
    src = side(
        "source", model.tokenizer, lambda c: [x + [eos] for x in model.tokenizer.encode(c[0])]
    )
    tgt = side("target", model.target_tokenizer, lambda c: model.target_tokenizer.encode(c[1]))
    return src, tgt


def train_callbacks() -> list[Callback]:
    return [TeacherForcingSchedule()]


def evaluate_file(
    model: Translator,
    path: str,
    beam: int = 5,
    length_penalty: float = 1.0,
    encoding_errors: str = "strict",
    **_: Any,
) -> dict[str, float]:
    from seqtool.data.parallel import read_pairs

    if beam < 1:
        raise SeqtoolError(f"--beam must be >= 1, not {beam}")
    src, tgt = read_pairs(path, encoding_errors=encoding_errors)
    return model.evaluate(eval_data(model, src, tgt, beam, length_penalty))


def report(metrics: dict[str, float], console: Any) -> None:
    console.print(
        f"BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}  (sacreBLEU, detokenized, "
        f"beam {int(metrics['beam'])}); dev loss teacher-forced "
        f"{metrics['loss_teacher_forced']:.3f} vs free-running "
        f"{metrics['loss_free_running']:.3f} nats/token",
        highlight=False,
    )
