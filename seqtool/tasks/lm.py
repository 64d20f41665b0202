"""Language model (character-level by default): backbone + linear head over the vocabulary.

Many-to-many in training (predict token t+1 from tokens <= t); one-to-many in generation,
stepping the recurrent stack one token at a time with carried state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqtool import checkpoint, decoding
from seqtool.backbone import Encoder, Recurrent, State
from seqtool.config import BackboneConfig, _Config, backbone_field, opt, tokenizer_opt
from seqtool.data import lm as lmdata
from seqtool.data.lm import EvalStream
from seqtool.data.text import display_name, read_text
from seqtool.errors import SeqtoolError
from seqtool.losses import sampled_softmax, unigram_proposal
from seqtool.metrics import language_model_metrics
from seqtool.tasks.base import Setup, TaskModel
from seqtool.tokenizers import PieceStream, check_known


@dataclass(frozen=True)
class LMOptions(_Config):
    """Train a language model (character-level by default) on text files.

    Examples (tiny sizes and few steps, so each runs in seconds):

      seqtool train lm corpora/play-sample.txt --hidden 64 --steps 30 --threads 1 -o my.safetensors

      seqtool train lm corpora/play-sample.txt --hidden 64 --steps 60 --threads 1 -o my.safetensors --resume   # extend to 60 steps (or go on after Ctrl-C)

      head -60 corpora/play-sample.txt > train.txt; tail -15 corpora/play-sample.txt > dev.txt

      seqtool train lm train.txt --dev dev.txt --cell gru --layers 1 --hidden 64 --steps 30 --threads 1 -o gru.safetensors

      seqtool tokenize train corpora/play-sample.txt --vocab-size 400 -o tok.model

      seqtool train lm train.txt --tokenizer tok.model --sampled-softmax 64 --reverse --hidden 64 --steps 30 --threads 1 -o bwd.safetensors
    """

    files: list[str] = opt(help="Training text file(s); - reads stdin.", argument=True)
    dev: str | None = opt(None, "Dev text file for evaluation.")
    dev_fraction: float = opt(
        0.05,
        "Hold out this tail fraction of the corpus as dev when --dev is not given (0: none).",
    )
    tokenizer: str = tokenizer_opt("char", "the corpus")
    vocab_size: int = opt(8000, "Vocabulary size for bpe/unigram.")
    encoding_errors: str = opt(
        "strict", "strict (error with byte offset) | replace | ignore for non-UTF-8 input."
    )
    max_dev_tokens: int = opt(2_000_000, cli=False)  # a held-out tail is sampled, not read whole


@dataclass(frozen=True)
class LMConfig(_Config):
    backbone: BackboneConfig = backbone_field()
    head_dropout: float = opt(0.0, "Dropout before the output layer.")
    reverse: bool = opt(
        False,
        "Read the text right to left: a backward LM, to seed a bidirectional classifier's "
        "backward direction (train classifier --init-from FWD --init-from BWD).",
        flags=("--reverse",),
    )
    # Training only (Jean et al. 2015); evaluation always uses the full softmax.
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
    backbone_defaults = dict(hidden_size=512, dropout=0.25)
    backbone_fixed = ("bidirectional",)  # a language model reads one way
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
        self.proposal = unigram_proposal(counts).to(self.proposal.device)

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
        loss = sampled_softmax(h, y.flatten(), self.head.weight, self.head.bias, self.proposal, k)
        return loss, y.numel()

    @torch.no_grad()
    def evaluate(self, data: EvalStream) -> dict[str, float]:
        """Carried-state evaluation: every token is predicted with all the context before it
        in its stream, as in generation. Returns nats/bits per char and perplexity."""
        device = next(self.parameters()).device
        state, total = None, 0.0
        for xs, ys in data.chunks(self.config.reverse, device):
            logits, _, state = self(xs, state=state)
            total += F.cross_entropy(
                logits.float().flatten(0, 1), ys.flatten(), reduction="sum"
            ).item()
        return language_model_metrics(total, data.predicted, data.chars)

    def check_prompt(self, prompt: str, what: str = "prompt") -> None:
        check_known(self.tokenizer, prompt, what)

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
        advance, last = self.backbone.prime(ids)  # the prompt, once through the fused stack
        w = self.head.weight.t().contiguous()
        b = self.head.bias.clone()
        b[[tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id]] = float("-inf")  # never sampled

        def step(cur: torch.Tensor, st: None) -> tuple[torch.Tensor, None]:
            return torch.addmm(b, advance(cur), w), st  # (1, V)

        pieces = PieceStream(tok, strip_first=not prompt)
        sampler = decoding.Sampler(last, temperature, top_k, top_p, generator)
        for cur in decoding.search(step, None, sampler, max_steps=length):
            text = pieces(int(cur))
            if text is not None:
                yield text
        if tail := pieces.flush():  # a character the last ids left unfinished
            yield tail

    def predict(self, inputs: list[str], **options: Any) -> list[str]:
        """A continuation of each prompt: options are generate()'s (length, temperature...)."""
        return ["".join(self.generate(p, **options)) for p in inputs]

    def eval_data(self, path: str, encoding_errors: str = "strict") -> EvalStream:
        """Held-out text as carried-state evaluation data."""
        text = read_text(path, encoding_errors)
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.int32)
        if ids.numel() < 2:
            raise SeqtoolError(f"{display_name(path)}: too short to evaluate (need 2 tokens)")
        return EvalStream(ids, len(text))

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[LanguageModel, Any, EvalStream | None]:
        """Stream the corpus into a cached memory-mapped token file (any size), build tokenizer
        and model; return (model, train source, dev data)."""
        opts, model, backbone, train_cfg, resume_header = setup

        def build(counts: np.ndarray, files: list[str]) -> tuple[LMConfig, Any]:
            if resume_header is not None:
                config = LMConfig.from_dict(resume_header.config)
                return config, checkpoint.load_tokenizer(resume_header)
            tok = lmdata.corpus_tokenizer(
                opts.tokenizer, counts, files, opts.vocab_size, opts.encoding_errors
            )
            bb = BackboneConfig(vocab_size=tok.vocab_size, **backbone)
            return LMConfig(backbone=bb, **model), tok

        config, tok, ids = lmdata.token_stream(
            opts.files, opts.encoding_errors, opts.dev, opts.dev_fraction, build
        )
        lm = cls(config, tok)
        dev_file = opts.dev is not None  # else the tail of the corpus (dev_fraction)
        dev_data = lm.eval_data(opts.dev, opts.encoding_errors) if dev_file else None
        frac = 0.0 if dev_file else opts.dev_fraction
        ids, held = lmdata.training_ids(ids, frac, opts.max_dev_tokens)
        V = lm.config.backbone.vocab_size
        if 0 < lm.config.sampled_softmax < V:
            lm.set_proposal(lmdata.token_counts(ids, V))
        source = lmdata.WindowSampler(
            ids, train_cfg.batch_size, train_cfg.seq_len, seed=train_cfg.seed
        )
        return lm, source, dev_data or held
