"""Frozen configuration dataclasses. Unknown keys are an error, so a typo never passes silently."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, Self

from seqtool.errors import ConfigError

CELLS = ("rnn", "lstm", "gru")


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


@dataclass(frozen=True)
class BackboneConfig(_Config):
    """Embedding + stacked recurrent layers, shared by every task."""

    vocab_size: int
    embedding_dim: int = 64
    hidden_size: int = 256
    layers: int = 2
    cell: str = "lstm"
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers
    embedding_dropout: float = 0.0
    padding_idx: int | None = 0
    weight_dropout: float = 0.0  # DropConnect on hidden-to-hidden weights (training only)

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

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Everything the generic trainer needs; stored in checkpoints for reproducibility."""

    steps: int = 0  # 0: derived from epochs
    epochs: float = 10.0
    batch_size: int = 32
    seq_len: int = 128  # window length for language models
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100
    schedule: str = "cosine"  # cosine | linear | constant
    min_lr_ratio: float = 0.1
    clip: float = 1.0  # 0 disables clipping
    eval_every: int = 0  # 0: about 10 evaluations per run
    patience: int = 0  # evaluations without improvement before stopping; 0 disables
    max_time: float = 0.0  # minutes; 0 disables
    time_budget: float = 0.0  # minutes: schedule over elapsed time, stop at the budget
    seed: int = 0
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16
    log_every: int = 20
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0: off

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
        if self.steps < 0 or self.epochs <= 0:
            raise ConfigError("steps must be >= 0 and epochs > 0")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), not {self.ema}")
