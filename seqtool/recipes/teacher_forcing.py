"""Scheduled sampling (Bengio et al. 2015): the translator's teacher-forcing ratio decays over
training from 1.0 to its final value; the ratio at each step comes from the trainer's step, so a
resumed run continues the schedule exactly."""

from __future__ import annotations

from typing import Any

from seqtool.backbone.decoder import teacher_forcing_ratio
from seqtool.training.callbacks import Callback


class TeacherForcingSchedule(Callback):
    """Sets `model.decoder.teacher_forcing` from the model config's teacher_forcing and
    teacher_forcing_schedule, at the start and after every step (resume-safe)."""

    def on_train_start(self, trainer: Any) -> None:
        self._set(trainer)

    def on_step_end(self, trainer: Any, loss: float | None) -> None:
        self._set(trainer)

    def _set(self, trainer: Any) -> None:
        m = trainer.model
        c = m.config
        m.decoder.teacher_forcing = teacher_forcing_ratio(
            c.teacher_forcing, c.teacher_forcing_schedule, trainer.step, trainer.total_steps
        )
