"""The small contract every task model fulfils (after flair's Model, minus the pickles).

A task model is the shared backbone plus a head. The generic trainer needs only
`forward_loss` and `evaluate`; checkpoints need `config`, `tokenizer` and `extra_metadata`;
`seqtool inspect` needs `inspect_inputs` (generic for models with a `backbone`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch
from torch import nn

from seqtool import checkpoint

if TYPE_CHECKING:
    from seqtool.backbone import Recurrent


class TaskModel(nn.Module):
    task: ClassVar[str]
    config_class: ClassVar[type]
    # The dev metric early stopping and "best" follow: a class default that a training setup
    # may override per model (the classifier's --select over several dev sets).
    main_metric: str
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

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        """The encoder's view of `text`, for `seqtool inspect trace|gradients`.

        Returns (tokens, x, recurrent): the token strings the encoder steps over (one per
        time step), x = the inputs to the first recurrent layer, (1, T, E), and the encoder's
        `Recurrent` stack, so that `recurrent(x)` is exactly what the model computes. This
        default covers models whose encoder is `self.backbone` (a `Backbone`); a task whose
        encoder differs (char-aware word features, an `encoder` attribute) overrides it.
        Raise SeqtoolError for text it cannot encode (e.g. no tokens).
        """
        from seqtool.backbone import Backbone
        from seqtool.errors import SeqtoolError

        backbone = getattr(self, "backbone", None)
        if not isinstance(backbone, Backbone):
            raise SeqtoolError(f"the {self.task} model does not expose its encoder for inspection")
        ids = self.tokenizer.encode(text)
        if not ids:
            raise SeqtoolError("nothing to inspect: the text encodes to no tokens")
        tokens = [self.tokenizer.id_to_piece(i) for i in ids]
        x = backbone.embedding(torch.tensor([ids]))  # (1, T, E)
        return tokens, x, backbone.rnn

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
            raise CheckpointError(
                f"{header.path}: weights do not fit the config ({first})"
            ) from None
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
