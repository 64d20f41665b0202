"""Language model (character-level by default): backbone + linear head over the vocabulary.

Many-to-many in training (predict token t+1 from tokens <= t); one-to-many in generation,
stepping the recurrent stack one token at a time with carried state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool.backbone import Encoder, Recurrent, State
from seqtool.config import BackboneConfig, _Config, opt
from seqtool.data.lm import EvalStream
from seqtool.decoding import Sampler, search
from seqtool.errors import SeqtoolError
from seqtool.metrics import language_model_metrics
from seqtool.tasks.base import TaskModel

IN_MEMORY_TOKENS = 50_000_000  # larger token streams stay on disk


@dataclass(frozen=True)
class LMOptions(_Config):
    """Train a language model (character-level by default) on text files.

    Examples:

      seqtool train lm corpus.txt -o my.safetensors

      seqtool train lm corpus.txt -o my.safetensors --cell gru --layers 2 --hidden 256

      seqtool train lm train.txt --dev dev.txt --precision bf16 --threads 2 --steps 3000

      seqtool train lm train.txt --dev dev.txt -o my.safetensors --resume   # after Ctrl-C

      seqtool train lm reviews.txt --tokenizer tok.model --sampled-softmax 1024 --reverse -o bwd.safetensors
    """

    files: list[str] = opt(help="Training text file(s); - reads stdin.", argument=True)
    dev: str | None = opt(None, "Dev text file for evaluation.")
    dev_fraction: float = opt(
        0.05,
        "Hold out this tail fraction of the corpus as dev when --dev is not given (0: none).",
    )
    tokenizer: str = opt(
        "char",
        "char | bpe | unigram (trained on the corpus) or a tokenizer file from `seqtool "
        "tokenize train`.",
    )
    vocab_size: int = opt(8000, "Vocabulary size for bpe/unigram.")
    encoding_errors: str = opt(
        "strict", "strict (error with byte offset) | replace | ignore for non-UTF-8 input."
    )
    max_dev_tokens: int = opt(2_000_000, cli=False)  # a held-out tail is sampled, not read whole


@dataclass(frozen=True)
class LMConfig(_Config):
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(vocab_size=1))
    head_dropout: float = opt(0.0, "Dropout before the output layer.")
    # Read the text right to left (predict token t-1 from tokens >= t): a backward LM, to seed
    # a bidirectional classifier's backward direction.
    reverse: bool = opt(
        False,
        "Read the text right to left: a backward LM, to seed a bidirectional classifier's "
        "backward direction (train classifier --init-from FWD --init-from BWD).",
        flags=("--reverse",),
    )
    # Training only: score the true token against this many shared negatives drawn from the
    # corpus unigram^0.75 (sampled softmax, Jean et al. 2015); 0 = full softmax. Evaluation
    # always uses the full softmax.
    sampled_softmax: int = opt(
        0,
        "Train the output layer against this many sampled negatives instead of the whole "
        "vocabulary (much faster for 8k+ subword vocabularies; dev loss stays exact). 0: full "
        "softmax.",
    )

    def __post_init__(self) -> None:
        if self.sampled_softmax < 0:
            raise SeqtoolError(f"sampled softmax must be >= 0, not {self.sampled_softmax}")


class LanguageModel(TaskModel):
    task = "lm"
    config_class = LMConfig
    options_class = LMOptions
    backbone_options = dict(
        cell="lstm", layers=2, hidden_size=512, embedding_dim=64, dropout=0.25,
        embedding_dropout=0.0, weight_dropout=0.0,
    )  # fmt: skip
    train_options = ("seq_len",)
    eval_options = ("encoding_errors",)
    shipped_model = "lm-shakespeare.safetensors"
    main_metric = "nats_per_char"
    higher_is_better = False

    def __init__(self, config: LMConfig, tokenizer) -> None:
        super().__init__(config, tokenizer)
        if config.backbone.bidirectional:
            raise SeqtoolError("a language model cannot be bidirectional (it would see the future)")
        self.backbone = Encoder(config.backbone)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.backbone.output_size, config.backbone.vocab_size)
        # Sampling distribution for --sampled-softmax (set from the corpus; not saved).
        self.register_buffer("proposal", torch.ones(config.backbone.vocab_size), persistent=False)

    def set_proposal(self, counts: np.ndarray) -> None:
        """Negatives for the sampled softmax are drawn ~ count^0.75 (every id at least once)."""
        q = torch.as_tensor(counts, dtype=torch.float64).clamp_min(1.0).pow(0.75)
        self.proposal = (q / q.sum()).float().to(self.proposal.device)

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None, state: State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """x (B, T) ids -> logits (B, T, V), mean loss if targets given, final state."""
        h, state = self.backbone(x, state=state)  # (B, T, H)
        logits = self.head(self.dropout(h))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return logits, loss, state

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        x, y = batch["x"], batch["y"]
        if self.config.reverse:  # window w: forward reads w[:-1] -> w[1:]; backward the mirror
            x, y = y.flip(1), x.flip(1)
        k = self.config.sampled_softmax
        if not self.training or k <= 0 or k >= self.config.backbone.vocab_size:
            _, loss, _ = self(x, y)
            return loss, y.numel()
        h, _ = self.backbone(x)  # (B, T, H)
        h = self.dropout(h).flatten(0, 1)  # (N, H)
        y = y.flatten()  # (N,)
        neg = torch.multinomial(self.proposal, k, replacement=True)  # (K,) shared by all rows
        log_kq = torch.log(self.proposal * k)  # expected count of each id among the K draws
        w, b = self.head.weight, self.head.bias
        true = (h * w[y]).sum(-1) + b[y] - log_kq[y]  # (N,)
        sampled = F.linear(h, w[neg], b[neg]) - log_kq[neg]  # (N, K)
        sampled = sampled.masked_fill(neg[None, :] == y[:, None], float("-inf"))  # hits
        logits = torch.cat([true[:, None], sampled], 1).float()  # (N, 1 + K); class 0 is true
        loss = F.cross_entropy(logits, torch.zeros_like(y))
        return loss, y.numel()

    @torch.no_grad()
    def evaluate(self, data: EvalStream) -> dict[str, float]:
        """Carried-state evaluation: every token is predicted with all the context before it
        in its stream, as in generation. Returns nats/bits per char and perplexity."""
        ids = data.ids.flip(0) if self.config.reverse else data.ids
        rows = data.streams
        L = (ids.numel() - 1) // rows  # tokens predicted per stream
        device = next(self.parameters()).device
        x = ids[: rows * L].view(rows, L)  # stored dtype; widened chunk by chunk
        y = ids[1 : rows * L + 1].view(rows, L)
        state, total = None, 0.0
        for s in range(0, L, data.chunk):
            xs = x[:, s : s + data.chunk].long().to(device)
            ys = y[:, s : s + data.chunk].long().to(device)
            logits, _, state = self(xs, state=state)
            total += F.cross_entropy(
                logits.float().flatten(0, 1), ys.flatten(), reduction="sum"
            ).item()
        predicted = rows * L
        chars = data.num_chars * predicted / max(1, ids.numel())  # = predicted for char models
        return language_model_metrics(total, predicted, chars)

    def check_prompt(self, prompt: str, what: str = "prompt") -> None:
        unknown = getattr(self.tokenizer, "unknown", None)
        if unknown is None:
            return
        bad = unknown(prompt)
        if bad:
            pos, ch = bad[0]
            raise SeqtoolError(
                f"{what} character {ch!r} (position {pos + 1}) is not in this model's "
                f"vocabulary of {len(self.tokenizer.chars)} characters"
            )

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        """As TaskModel's, but characters outside the vocabulary are an error, not <unk>."""
        self.check_prompt(text, "text")
        tokens, x, rnn = super().inspect_inputs(text)
        if self.config.reverse:  # a backward LM steps through the text right to left
            return tokens[::-1], x.flip(1), rnn
        return tokens, x, rnn

    @torch.inference_mode()
    def generate(
        self,
        prompt: str,
        length: int,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Iterator[str]:
        """Yield text piece by piece. The prompt runs once through the fused stack; after that
        each new token is one step with carried state (the prefix is never re-fed)."""
        if self.config.reverse:
            raise SeqtoolError(
                "this language model reads text right to left (trained with --reverse): it "
                "seeds a classifier's backward direction (train classifier --init-from) and "
                "does not generate"
            )
        self.check_prompt(prompt)
        tok = self.tokenizer
        ids = tok.encode(prompt)
        if not ids:  # no prompt: start as after a line break, as the training text does
            nl = tok.encode("\n")
            ids = nl if nl and nl[0] != tok.unk_id else [tok.bos_id]
        x = torch.tensor([ids])
        # Prompt: fused forward for all but the last token; the stepper continues from there.
        state = self.backbone(x[:, :-1])[1] if len(ids) > 1 else None
        stepper = self.backbone.stepper()
        state = tuple(s.clone() for s in state) if state is not None else stepper.initial_state(1)
        hs = list(state[0].unbind(0))
        cs = list(state[1].unbind(0)) if len(state) > 1 else None
        w = self.head.weight.t().contiguous()
        b = self.head.bias.clone()
        b[[tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id]] = float("-inf")  # never sampled

        def step(cur: torch.Tensor, st: None) -> tuple[torch.Tensor, None]:
            return torch.addmm(b, stepper.advance(cur, hs, cs), w), st  # (1, V)

        is_char = tok.kind == "char"
        pending = b""  # byte-fallback pieces waiting to form a UTF-8 character
        sampler = Sampler(x[:, -1], temperature, top_k, top_p, generator)
        for step_no, cur in enumerate(search(step, None, sampler, max_steps=length)):
            piece = tok.id_to_piece(int(cur))
            if is_char:
                yield piece
                continue
            if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                pending += bytes([int(piece[3:5], 16)])
                try:
                    text = pending.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                pending = b""
                yield text
            else:
                text = piece.replace("\u2581", " ")
                yield text.lstrip(" ") if step_no == 0 and not prompt else text

    def predict(self, inputs: list[str], **options: Any) -> list[str]:
        """A continuation of each prompt: options are generate()'s (length, temperature...)."""
        return ["".join(self.generate(p, **options)) for p in inputs]

    def eval_data(self, path: str, encoding_errors: str = "strict") -> EvalStream:
        from seqtool.data.text import read_text

        return self.stream(read_text(path, encoding_errors))

    def stream(self, text: str) -> EvalStream:
        """Held-out text as carried-state evaluation data."""
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.int32)
        if ids.numel() < 2:
            raise SeqtoolError("evaluation text is too short (need at least 2 tokens)")
        return EvalStream(ids, len(text))

    @classmethod
    def prepare(
        cls,
        opts: LMOptions,
        model: dict[str, Any],
        backbone: dict[str, Any],
        train_cfg: Any,
        resume_header: Any = None,
    ) -> tuple[LanguageModel, Any, EvalStream | None]:
        """Stream the corpus into a cached memory-mapped token file (any size), build tokenizer
        and model; return (model, train source, dev data)."""
        from seqtool import checkpoint
        from seqtool.data.lm import WindowSampler, token_stream

        def build(counts: np.ndarray, files: list[str]) -> tuple[LMConfig, Any]:
            if resume_header is not None:
                config = LMConfig.from_dict(resume_header.config)
                return config, checkpoint.load_tokenizer(resume_header)
            tok = lm_tokenizer(opts, counts, files)
            bb = BackboneConfig(vocab_size=tok.vocab_size, **backbone)
            return LMConfig(backbone=bb, **model), tok

        config, tok, ids = token_stream(
            opts.files, opts.encoding_errors, opts.dev, opts.dev_fraction, build
        )
        lm = cls(config, tok)
        dev_data = None
        if opts.dev is not None:
            from seqtool.data.text import read_text

            dev_data = lm.stream(read_text(opts.dev, opts.encoding_errors))
        elif opts.dev_fraction > 0:
            cut = int(len(ids) * (1 - opts.dev_fraction))
            dev_ids = ids.span(cut, cut + opts.max_dev_tokens)  # a huge tail: sampled
            chars = round(len(dev_ids) * ids.num_chars / max(1, len(ids)))
            dev_data = EvalStream(dev_ids.tensor(), chars)
            ids = ids.span(0, cut)
        if len(ids) < 3:
            raise SeqtoolError("corpus too small: need at least 3 tokens of training text")
        if len(ids) <= IN_MEMORY_TOKENS:  # small corpora: index an in-memory tensor (faster)
            ids = ids.tensor()
        V = lm.config.backbone.vocab_size
        if 0 < lm.config.sampled_softmax < V:
            lm.set_proposal(_token_counts(ids, V))
        source = WindowSampler(ids, train_cfg.batch_size, train_cfg.seq_len, seed=train_cfg.seed)
        return lm, source, dev_data


def lm_tokenizer(opts: LMOptions, counts: np.ndarray, files: list[str]) -> Any:
    """--tokenizer: the corpus's characters, subwords learnt from a sample, or a file."""
    from seqtool import tokenizers
    from seqtool.data import corpus

    if opts.tokenizer == "char":
        return tokenizers.CharTokenizer(chr(c) for c in np.nonzero(counts)[0])
    sample = (
        corpus.spm_sample(files, opts.encoding_errors) if opts.tokenizer in tokenizers.SPECS else []
    )
    return tokenizers.build(opts.tokenizer, sample, opts.vocab_size, dummy_prefix=False)


def _token_counts(ids, vocab_size: int, limit: int = 20_000_000) -> np.ndarray:
    """Token frequencies over (at most the first `limit` tokens of) the training stream."""
    part = ids[:limit].numpy() if isinstance(ids, torch.Tensor) else ids.read(0, limit)
    return np.bincount(part.astype(np.int64), minlength=vocab_size)[:vocab_size]
