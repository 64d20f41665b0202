"""Frozen configuration dataclasses. Unknown keys are an error, so a typo never passes silently.

Each field declares its command-line option once, in its metadata (`opt(...)`): the help
text, the flag spelling when it is not `--field-name`, and whether it is an option at all
(`cli=False` for values a task derives, such as the vocabulary size). `seqtool train TASK`
is generated from these fields (cli/options.py), so an option is written down only here or
in its task's own config.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Self

from seqtool.errors import ConfigError

CELLS = ("rnn", "lstm", "gru")


def opt(
    default: Any = MISSING,
    help: str = "",
    *,
    flags: tuple[str, ...] = (),
    cli: bool = True,
    argument: bool = False,
    factory: Any = MISSING,
    metavar: str | None = None,
    show_default: bool = True,
) -> Any:
    """A dataclass field that is also a command-line option.

    flags: the option's declarations when not `--field-name` (e.g. ("--output", "-o"), or
    ("--lowercase",) for a flag with no --no- form); cli=False: not an option (derived or
    internal); argument=True: a positional argument; metavar: the value's name in --help
    (default: from the field's name and type); show_default=False: --help does not print it."""
    meta = {"help": help, "flags": flags, "cli": cli, "argument": argument, "metavar": metavar}
    meta["show_default"] = show_default
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class _Config:
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        data = dict(data)
        for k, v in data.items():  # nested configs arrive as dicts
            sub = hints.get(k)
            if isinstance(sub, type) and issubclass(sub, _Config) and isinstance(v, dict):
                data[k] = sub.from_dict(v)
        try:
            return cls(**data)
        except TypeError as e:
            raise ConfigError(f"{cls.__name__}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


# A bpe/unigram tokenizer trained here learns from at most this many characters of the
# training data (evenly spread): sentencepiece needs ~20 bytes of memory per character.
TOKENIZER_SAMPLE_CHARS = 10_000_000


def tokenizer_opt(default: str, trained_on: str) -> Any:
    """--tokenizer of a task that learns its tokenizer from its training data."""
    kinds = " | ".join([default] + [k for k in ("char", "bpe", "unigram") if k != default])
    return opt(
        default,
        f"{kinds} (trained on {trained_on}) or a tokenizer file from `seqtool tokenize train`.",
    )


def tokenizer_sample_opt(unit: str) -> Any:
    """--tokenizer-sample: how much of the training data bpe/unigram learn from."""
    return opt(
        TOKENIZER_SAMPLE_CHARS,
        f"bpe/unigram learn from at most this many characters of the {unit}s (every k-th "
        f"{unit}; bounds memory on big files); 0: all {unit}s.",
    )


@dataclass(frozen=True)
class BackboneConfig(_Config):
    """Embedding + stacked recurrent layers, shared by every task."""

    vocab_size: int = opt(cli=False)
    cell: str = opt("lstm", "rnn | lstm | gru (rnn is the tanh Elman RNN).")
    layers: int = opt(2, "Stacked recurrent layers.")
    hidden_size: int = opt(256, "Hidden units per layer and direction.", flags=("--hidden",))
    embedding_dim: int = opt(64, "Token embedding size.")
    dropout: float = opt(0.0, "Dropout between stacked layers.")
    embedding_dropout: float = opt(0.0, "Dropout on token embeddings.")
    bidirectional: bool = opt(False, "Run a second recurrent stack right-to-left.")
    weight_dropout: float = opt(
        0.0,
        "DropConnect on the recurrent layers' hidden-to-hidden weights, one mask per batch "
        "(AWD-LSTM's weight drop; 0: off).",
    )
    padding_idx: int | None = opt(0, cli=False)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}")
        if self.layers < 1:
            raise ConfigError(f"layers must be >= 1, not {self.layers}")
        if self.hidden_size < 1 or self.embedding_dim < 1 or self.vocab_size < 1:
            raise ConfigError("hidden size, embedding size and vocabulary size must be >= 1")
        for name in ("dropout", "embedding_dropout", "weight_dropout"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), not {p}")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Everything the generic trainer needs; stored in checkpoints for reproducibility."""

    steps: int = opt(0, "Optimizer steps (0: from --epochs).")
    epochs: float = opt(10.0, "Passes over the training data when --steps is 0.")
    batch_size: int = opt(32, "Sequences per batch.", flags=("--batch-size", "-b"))
    # Window length of language models: an option only of the tasks that list it.
    seq_len: int = opt(128, "Training window length in tokens (BPTT length).", cli=False)
    lr: float = opt(3e-3, "Peak learning rate (AdamW).")
    weight_decay: float = opt(0.01, "AdamW weight decay.")
    warmup: int | None = opt(
        None,
        "Linear warmup steps (default: 10 % of the planned steps, at most 100; with "
        "--time-budget also at most 10 % of the time).",
        show_default=False,
    )
    schedule: str = opt("cosine", "LR decay after warmup: cosine | linear | constant.")
    min_lr_ratio: float = opt(0.1, cli=False)
    clip: float = opt(1.0, "Gradient-norm clipping (0: off). Cures exploding gradients.")
    eval_every: int = opt(0, "Steps between dev evaluations (0: ~10 per run).")
    patience: int = opt(0, "Stop after this many evaluations without improvement (0: off).")
    max_time: float = opt(0.0, "Stop after this many minutes of training (0: no limit).")
    time_budget: float = opt(
        0.0,
        "Train for this many minutes: the LR schedule follows elapsed time and ends at the "
        "budget, so a run on a busy machine still anneals (not bit-reproducible).",
    )
    ema: float = opt(
        0.0,
        "Evaluate and save an exponential moving average of the weights with this decay, e.g. "
        "0.999 (0: off). Often a better model than the last weights.",
    )
    seed: int = opt(0, "Random seed: the same seed and data give the same model.")
    threads: int = opt(
        0,
        "CPU threads for torch (0: torch's default). One is often faster on a busy 2-core machine.",
    )
    device: str = opt("auto", "auto | cpu | cuda | mps (auto: cuda, then mps, then cpu).")
    precision: str = opt("fp32", "fp32 | bf16 (bf16 autocast; faster on CPUs with bf16 support).")
    log_every: int = opt(20, "Steps between logged losses.")

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"schedule must be cosine, linear or constant, not {self.schedule!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be fp32 or bf16, not {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise ConfigError(f"device must be auto, cpu, cuda or mps, not {self.device!r}")
        if self.batch_size < 1 or self.seq_len < 2:
            raise ConfigError("batch size must be >= 1 and sequence length >= 2")
        if self.lr <= 0:
            raise ConfigError(f"learning rate must be > 0, not {self.lr}")
        if self.warmup is not None and self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, not {self.warmup}")
        if self.steps < 0 or self.epochs <= 0:
            raise ConfigError("steps must be >= 0 and epochs > 0")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), not {self.ema}")


def backbone_field(**defaults: Any) -> Any:
    """A task config's nested BackboneConfig field (vocab_size 1 until the tokenizer is known)."""
    return field(default_factory=lambda: BackboneConfig(**{"vocab_size": 1, **defaults}))
