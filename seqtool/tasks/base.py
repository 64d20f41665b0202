"""The contract every task fulfils (after flair's Model, minus the pickles).

A task is the shared backbone (backbone/) plus a small head, as one `TaskModel` subclass in
one file of tasks/, registered with one line in tasks/__init__.py. The class declares:

- `config_class`: its model config (a frozen dataclass; nested BackboneConfig), saved in the
  checkpoint. Fields made with `config.opt(...)` are `seqtool train TASK` options.
- `options_class`: the data and setup options of `seqtool train TASK` (files, dev sets,
  tokenizer...), also `opt(...)` fields. `backbone_defaults` gives this task's defaults for
  the BackboneConfig options (`backbone_fixed`: those it does not offer); `train_options` the
  extra TrainConfig ones.
- `prepare(Setup)`: options -> (model, training batches, dev data), the only setup the
  trainer needs.
- `forward_loss` and `evaluate`: what the generic trainer calls; `callbacks` adds any
  trainer callbacks of its own (the translator's teacher-forcing schedule).
- `eval_data` (a held-out file -> data for `evaluate`) and `report` (extra tables for
  `seqtool eval`), so `seqtool eval` serves any task without knowing it.
- `predict`: the task's inference on raw inputs, in input order.
- checkpoint hooks (`extra_metadata`, `from_parts`, `legacy_keys`) and `inspect_inputs`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

import torch
from torch import nn

from seqtool import checkpoint
from seqtool.errors import CheckpointError, SeqtoolError

if TYPE_CHECKING:
    from seqtool.backbone import Recurrent
    from seqtool.config import TrainConfig


class Setup(NamedTuple):
    """What `prepare` gets: the task's `options_class` instance, the `config_class` fields
    and BackboneConfig fields given, the training config, and the header of the interrupted
    run when resuming."""

    opts: Any
    model: dict[str, Any]
    backbone: dict[str, Any]
    train_cfg: TrainConfig
    resume_header: checkpoint.Header | None = None


class TaskModel(nn.Module):
    task: ClassVar[str]
    config_class: ClassVar[type]
    options_class: ClassVar[type]
    # `train TASK` offers every BackboneConfig option but those in backbone_fixed, with the
    # config's defaults except those in backbone_defaults
    backbone_defaults: ClassVar[dict[str, Any]] = {}
    backbone_fixed: ClassVar[tuple[str, ...]] = ()
    train_options: ClassVar[tuple[str, ...]] = ()  # TrainConfig fields with cli=False offered too
    eval_options: ClassVar[tuple[str, ...]] = ()  # `seqtool eval` options this task reads
    shipped_model: ClassVar[str | None] = None  # file name in checkpoints/ of its default model
    # Old state-dict prefixes -> today's, so checkpoints of earlier layouts still load.
    legacy_keys: ClassVar[dict[str, str]] = {}
    # The dev metric early stopping and "best" follow: a class default that a training setup
    # may override per model (the classifier's --select over several dev sets).
    main_metric: str
    higher_is_better: ClassVar[bool]

    def __init__(self, config: Any, tokenizer: Any) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer

    # -- training ----------------------------------------------------------------------------

    @classmethod
    def prepare(cls, setup: Setup) -> tuple[Self, Any, Any]:
        """Read the training data, build (or, resuming, rebuild) tokenizer and model.
        Returns (model, an endless resumable batch source, dev data for `evaluate` or None)."""
        raise NotImplementedError

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Mean loss over the batch and the number of target tokens it covers."""
        raise NotImplementedError

    def callbacks(self) -> list[Any]:
        """Trainer callbacks this task needs (training.callbacks.Callback)."""
        return []

    # -- inference and evaluation --------------------------------------------------------------

    def predict(self, inputs: Any, **options: Any) -> list[Any]:
        """The task's output for each input, in input order."""
        raise NotImplementedError

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[torch.device]:
        """Eval mode (no dropout) for a prediction, the previous mode back afterwards even
        on an error (prediction may run mid-training); yields the model's device."""
        was_training = self.training
        self.eval()
        try:
            yield next(self.parameters()).device
        finally:
            self.train(was_training)

    def eval_data(self, path: str, **options: Any) -> Any:
        """A held-out file read for `evaluate`; options are `eval_options` the user gave."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics on held-out data; must include `main_metric`."""
        raise NotImplementedError

    @classmethod
    def report(cls, metrics: dict[str, Any]) -> list[Any]:
        """Tables (rich renderables) beyond the headline metrics, for `seqtool eval`."""
        return []

    # -- inspection ----------------------------------------------------------------------------

    def inspect_inputs(self, text: str) -> tuple[list[str], torch.Tensor, Recurrent]:
        """The encoder's view of `text`, for `seqtool inspect trace|gradients`.

        Returns (tokens, x, recurrent): the token strings the encoder steps over (one per
        time step), x = the inputs to the first recurrent layer, (1, T, E), and the encoder's
        `Recurrent` stack, so that `recurrent(x)` is exactly what the model computes. This
        default covers models whose encoder is `self.backbone` fed token ids; a task whose
        encoder reads more (char-aware word features) overrides it.
        Raise SeqtoolError for text it cannot encode (e.g. no tokens).
        """
        from seqtool.backbone import Encoder

        backbone = getattr(self, "backbone", None)
        if not isinstance(backbone, Encoder):
            raise SeqtoolError(f"the {self.task} model does not expose its encoder for inspection")
        ids = self.tokenizer.encode(text)
        if not ids:
            raise SeqtoolError("nothing to inspect: the text encodes to no tokens")
        tokens = [self.tokenizer.id_to_piece(i) for i in ids]
        x = backbone.embed(torch.tensor([ids]))  # (1, T, E)
        return tokens, x, backbone.rnn

    # -- checkpoint ----------------------------------------------------------------------------

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

    def upgrade_keys(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Rename weights of an earlier layout (`legacy_keys` prefixes) to today's names; a
        name this model already has is left alone."""
        if not self.legacy_keys:
            return tensors
        expected = self.state_dict().keys()
        out = {}
        for k, v in tensors.items():
            if k not in expected:
                for old, new in self.legacy_keys.items():
                    if k.startswith(old) and new + k[len(old) :] in expected:
                        k = new + k[len(old) :]
                        break
            out[k] = v
        return out

    @classmethod
    def load(cls, header: checkpoint.Header) -> Self:
        try:
            config = cls.config_class.from_dict(header.config)
        except SeqtoolError as e:
            raise CheckpointError(f"{header.path}: bad model config ({e})") from None
        extra = {k: header.json(k) for k in header.metadata if k not in checkpoint.RESERVED_KEYS}
        model = cls.from_parts(config, checkpoint.load_tokenizer(header), extra)
        tensors = model.upgrade_keys(checkpoint.load_tensors(header))
        try:
            model.load_state_dict(tensors, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise CheckpointError(
                f"{header.path}: weights do not fit the config ({first})"
            ) from None
        return model.eval()
