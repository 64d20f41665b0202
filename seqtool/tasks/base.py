"""The small contract every task model fulfils (after flair's Model, minus the pickles).

A task model is the shared backbone plus a head. The generic trainer needs only
`forward_loss` and `evaluate`; checkpoints need `config`, `tokenizer` and `extra_metadata`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from seqtool import checkpoint


class TaskModel(nn.Module):
    task: ClassVar[str]
    config_class: ClassVar[type]
    main_metric: ClassVar[str]  # the dev metric early stopping and "best" follow
    higher_is_better: ClassVar[bool]

    def __init__(self, config: Any, tokenizer: Any) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Mean loss over the batch and the number of target tokens it covers."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, float]:
        """Metrics on held-out data; must include `main_metric`."""
        raise NotImplementedError

    def extra_metadata(self) -> dict[str, Any]:
        """Task extras stored in the checkpoint (label vocabularies...), JSON-serialisable."""
        return {}

    @classmethod
    def from_parts(cls, config: Any, tokenizer: Any, extra: dict[str, Any]) -> Self:
        return cls(config, tokenizer)

    def save(
        self, path: str | Path, train_config: dict[str, Any] | None = None, dtype: str = "fp32"
    ) -> None:
        checkpoint.save(
            path,
            self.state_dict(),
            task=self.task,
            config=self.config.to_dict(),
            tokenizer=self.tokenizer,
            train_config=train_config,
            extra=self.extra_metadata(),
            dtype=dtype,
        )

    @classmethod
    def load(cls, header: checkpoint.Header) -> Self:
        from seqtool.errors import CheckpointError, SeqtoolError

        try:
            config = cls.config_class.from_dict(header.config)
        except SeqtoolError as e:
            raise CheckpointError(f"{header.path}: bad model config ({e})") from None
        extra = {k: header.json(k) for k in header.metadata if k not in _RESERVED}
        model = cls.from_parts(config, checkpoint.load_tokenizer(header), extra)
        tensors = checkpoint.load_tensors(header)
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise CheckpointError(f"{header.path}: weights do not fit the config ({first})") from None
        return model.eval()


_RESERVED = {
    "format_version",
    "seqtool_version",
    "task",
    "config",
    "train_config",
    "tokenizer",
    "storage_dtype",
}
