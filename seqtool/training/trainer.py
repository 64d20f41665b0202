"""The generic trainer: AdamW, clipping, warmup + decay, dev evaluation, best/last
checkpoints and exact resume. Every task trains through this one loop.

Files of a run with output `model.safetensors`:
    model.safetensors          best model on dev (or the final one without dev data)
    model.run/last.safetensors the latest weights, full precision
    model.run/resume.pt        weights (again), optimizer, step, schedule, RNG, data position
                               (tensors and plain values only; loaded with weights_only=True)
    model.run/metrics.jsonl    one JSON object per logged step, evaluation and warning
    model.run/config.json      the resolved task, model, training config and the task's
                               data options (MetricsLog; --resume compares against them)
A run whose resume.pt is not marked finished is interrupted: see interrupted_run().
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import torch

from seqtool import checkpoint, notices
from seqtool.config import TrainConfig
from seqtool.errors import CheckpointError, SeqtoolError
from seqtool.tasks.base import TaskModel
from seqtool.training import distributed, ema, runtime
from seqtool.training.callbacks import (
    Callback,
    EarlyStopping,
    MetricsLog,
    Progress,
    TimeLimit,
    callback_states,
    load_callback_states,
)
from seqtool.training.checks import RunChecks
from seqtool.training.runfiles import interrupted_run, run_dir
from seqtool.training.schedule import auto_warmup, lr_lambda, set_hyperparameters

__all__ = ["BatchSource", "Interrupted", "Trainer", "interrupted_run", "lr_lambda", "run_dir"]


class BatchSource(Protocol):
    """An endless, resumable stream of training batches."""

    steps_per_epoch: int

    def next_batch(self) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Interrupted(SeqtoolError):
    """Training stopped by Ctrl-C / SIGTERM after saving resume state."""

    exit_code = 130


class Trainer:
    def __init__(
        self,
        model: TaskModel,
        train: BatchSource,
        dev: Any,
        cfg: TrainConfig,
        out: str | Path,
        save_dtype: str = "fp32",
        callbacks: list[Callback] | None = None,
        console: Any = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.train_data, self.dev = cfg, train, dev
        self.console = notices.keep_going(console)  # a closed stderr must not end the run
        self.options = options  # the task's data and setup options, for config.json
        self.out = Path(out)
        self.dir = run_dir(self.out)
        self.save_dtype = save_dtype
        self.rank, self.world, self.device = distributed.setup(runtime.resolve_device(cfg.device))
        self.is_main = self.rank == 0
        self.model = model.to(self.device)
        self.ddp = distributed.wrap(model, self.device) if self.world > 1 else None
        if self.world > 1:
            shard = getattr(train, "shard", None)
            if shard is None:
                raise SeqtoolError(f"{type(train).__name__} cannot be sharded across ranks")
            shard(self.rank, self.world)
        self.num_params = sum(p.numel() for p in model.parameters())
        self.total_steps = cfg.steps or max(1, math.ceil(cfg.epochs * train.steps_per_epoch))
        self.eval_every = cfg.eval_every or max(1, self.total_steps // 10)
        if cfg.time_budget > 0 and not cfg.eval_every and not cfg.steps:
            self.eval_every = 200
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            # No weight decay on biases, norms and embeddings (rows of rare tokens would shrink).
            (no_decay if p.ndim < 2 or "embed" in name else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": cfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=cfg.lr,
            betas=(0.9, 0.99),
        )
        # --time-budget: the schedule follows elapsed training time, so a run on a busy or
        # unknown machine still anneals fully by its deadline (not bit-reproducible).
        budget = cfg.time_budget * 60
        progress = (
            (lambda _s: min(1.0, getattr(self, "elapsed", 0.0) / budget)) if budget > 0 else None
        )
        if budget > 0 and not cfg.steps:
            self.total_steps = 10**9  # the budget ends the run
        self.warmup = auto_warmup(cfg, None if self.total_steps == 10**9 else self.total_steps)
        self._time_done = (lambda: getattr(self, "elapsed", 0.0) / budget) if budget > 0 else None
        self._progress = progress
        self._set_schedule()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: self._lr_factor(step)
        )
        # Only rank 0 shows progress and writes logs; every rank runs the stop rules.
        self.callbacks: list[Callback] = (
            [Progress(console), MetricsLog(self.dir / "metrics.jsonl")] if self.is_main else []
        )
        if cfg.patience > 0 and dev is not None:
            self.callbacks.append(EarlyStopping(cfg.patience))
        if cfg.max_time > 0 or cfg.time_budget > 0:
            limit = min(t for t in (cfg.max_time, cfg.time_budget) if t > 0)
            self.callbacks.append(TimeLimit(limit))
        self.callbacks += callbacks or []
        if self.is_main and dev is not None:  # last: older resume states have no entry for it
            self.callbacks.append(RunChecks())
        # --ema: a moving average of the weights, used for evaluation and the saved model.
        self.ema: list[torch.Tensor] | None = None
        if cfg.ema > 0:
            self.ema = [p.detach().clone() for p in model.parameters()]
        self.step = 0
        self.best: float | None = None
        self.best_metrics: dict[str, float] = {}
        self.elapsed = 0.0  # training seconds, carried over resumes
        self.tokens_per_sec = 0.0
        self._stop_reason: str | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def stop(self, reason: str) -> None:
        self._stop_reason = reason

    def _set_schedule(self) -> None:
        self._lr_factor = lr_lambda(
            self.cfg, self.total_steps, self._progress, self.warmup, self._time_done
        )

    # -- warnings ------------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        """A warning about this run: one line on stderr and a record in metrics.jsonl."""
        if not self.is_main:
            return
        line = f"warning: {message}"
        try:
            if self.console is not None:
                self.console.print(line, highlight=False, soft_wrap=True)
            else:
                print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed (`2>&1 | head`): train on regardless
            notices.silence_stderr()
        self.log_warning(message)

    def log_warning(self, message: str) -> None:
        """Record a warning already shown in the run's metrics log."""
        for cb in self.callbacks:
            if isinstance(cb, MetricsLog):
                cb.write_warning(self, message)

    def _resume_state(self, finished: bool = False) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": runtime.rng_state(),
            "data": self.train_data.state_dict(),
            "best": self.best,
            "best_metrics": self.best_metrics,
            "elapsed": self.elapsed,
            # By name: a resumed run may add or drop some (--patience, --max-time).
            "callbacks": callback_states(self.callbacks),
            "train_config": self.cfg.to_dict(),
            "ema": self.ema,
            "warmup": self.warmup,
            "finished": finished,  # False: an interrupted run (see interrupted_run)
        }

    def _resume_path(self) -> Path:
        return self.dir / ("resume.pt" if self.is_main else f"resume-rank{self.rank}.pt")

    def save_resume(self, finished: bool = False) -> None:
        import io

        self.dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            self.model.save(self.dir / "last.safetensors", self.cfg.to_dict(), dtype="fp32")
        buf = io.BytesIO()
        # Other ranks keep only what differs per rank: RNG streams and data position.
        state = self._resume_state(finished)
        if not self.is_main:
            state = {"rng": state["rng"], "data": state["data"]}
        torch.save(state, buf)
        checkpoint.atomic_write_bytes(self._resume_path(), buf.getvalue())
        if self.world > 1:
            distributed.barrier()

    def load_resume(self) -> None:
        path = self.dir / "resume.pt"
        last = self.dir / "last.safetensors"
        if not path.is_file() or not last.is_file():
            raise CheckpointError(f"--resume: no resume state in {self.dir}/ (nothing to resume)")
        header = checkpoint.read_header(last)
        checkpoint.expect_task(header, self.model.task, f"train {self.model.task} --resume")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # any unpickling failure means a damaged or foreign file
            raise CheckpointError(f"{path}: damaged resume state ({type(e).__name__})") from None
        weights = state.get("model") or checkpoint.load_tensors(header)  # older runs: the file
        self.model.load_state_dict({k: v.to(self.device) for k, v in weights.items()})
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.cfg.warmup is None and state.get("warmup") is not None:
            self.warmup = int(state["warmup"])  # an extended run does not warm up again
            self._set_schedule()
        set_hyperparameters(self.optimizer, self.scheduler, self.cfg, self._lr_factor, self.step)
        if not self.is_main:  # this rank's own RNG streams and data position
            state.update(torch.load(self._resume_path(), map_location="cpu", weights_only=True))
        runtime.set_rng_state(state["rng"])
        self.train_data.load_state_dict(state["data"])
        self.best, self.best_metrics = state["best"], dict(state["best_metrics"])
        self.elapsed = float(state["elapsed"])
        if self.ema is not None:
            saved = state.get("ema")
            if saved is None:  # resumed with --ema from a run without it: start averaging now
                saved = [p.detach().clone() for p in self.model.parameters()]
            self.ema = [t.to(self.device) for t in saved]
        load_callback_states(self.callbacks, state["callbacks"])

    def _install_signal_handlers(self) -> dict[int, Any]:
        """Ctrl-C / SIGTERM stop at the next step boundary, so saved state is consistent;
        a second Ctrl-C stops at once."""

        def handler(signum: int, frame: Any) -> None:
            if self._interrupted and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._interrupted = True

        old = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave the defaults
            pass
        return old

    def request_interrupt(self) -> None:
        """What Ctrl-C does: stop after the current step, save, raise Interrupted."""
        self._interrupted = True

    # -- weight average ----------------------------------------------------------------------

    def _update_ema(self) -> None:
        assert self.ema is not None
        ema.update(self.ema, self.model, self.cfg.ema, self.step)

    def averaged_weights(self) -> contextlib.AbstractContextManager:
        """Within: the model holds the averaged weights (no-op without --ema)."""
        return ema.swapped_in(self.model, self.ema)

    # -- loop --------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Dev metrics; under DDP rank 0 evaluates and every rank gets its numbers."""
        metrics = None
        if self.is_main:
            self.model.eval()
            metrics = self.model.evaluate(self.dev)
            self.model.train()
        return distributed.broadcast(metrics) if self.world > 1 else metrics

    def _after_eval(self, metrics: dict[str, float]) -> None:
        value = metrics[self.model.main_metric]
        sign = 1 if self.model.higher_is_better else -1
        improved = self.best is None or sign * (value - self.best) > 0
        if improved:
            self.best, self.best_metrics = value, dict(metrics)
            if self.is_main:
                self.model.save(self.out, self.cfg.to_dict(), dtype=self.save_dtype)
        for cb in self.callbacks:
            cb.on_eval(self, metrics, improved)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to `total_steps` (or a stop); returns a summary. Ctrl-C saves and raises
        Interrupted; the run then continues exactly with `resume=True`."""
        if resume:
            self.load_resume()
        else:  # a fresh start: no state of an earlier run may be resumed into this one
            self._resume_path().unlink(missing_ok=True)
            if self.is_main:
                self.dir.mkdir(parents=True, exist_ok=True)
                (self.dir / "metrics.jsonl").unlink(missing_ok=True)
        cfg, model = self.cfg, self.model
        model.train()
        for cb in self.callbacks:
            cb.on_train_start(self)
        for message, shown in notices.take():  # raised while the run was set up
            (self.log_warning if shown else self.warn)(message)
        self._interrupted = False
        old_handlers = self._install_signal_handlers()
        window_tokens, window_start, loss_sum, loss_n = 0, time.perf_counter(), 0.0, 0
        try:
            while self.step < self.total_steps and self._stop_reason is None:
                if self._interrupted:
                    raise KeyboardInterrupt
                t0 = time.perf_counter()
                batch = {
                    k: (v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v)
                    for k, v in self.train_data.next_batch().items()
                }
                with runtime.autocast(self.device, cfg.precision):
                    loss, ntokens = (self.ddp or model.forward_loss)(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                if self.ema is not None:
                    self._update_ema()
                self.elapsed += time.perf_counter() - t0
                window_tokens += ntokens * self.world
                loss_sum += loss.detach()
                loss_n += 1
                logged = None
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    self.tokens_per_sec = window_tokens / max(now - window_start, 1e-9)
                    logged = float(loss_sum) / loss_n
                    if not math.isfinite(logged):
                        raise SeqtoolError(
                            f"training diverged at step {self.step} (loss {logged}); "
                            "try a lower --lr or keep --clip on"
                        )
                    window_tokens, window_start, loss_sum, loss_n = 0, now, 0.0, 0
                for cb in self.callbacks:
                    cb.on_step_end(self, logged)
                if self.world > 1:  # one rank's Ctrl-C or stop rule stops them all together
                    self._interrupted = distributed.any_rank(self._interrupted)
                    if distributed.any_rank(self._stop_reason is not None):
                        self._stop_reason = self._stop_reason or "stopped on another rank"
                at_end = self.step == self.total_steps or self._stop_reason is not None
                if self.dev is not None and (self.step % self.eval_every == 0 or at_end):
                    t_eval = time.perf_counter()
                    with self.averaged_weights():
                        self._after_eval(self.evaluate())
                    window_start += time.perf_counter() - t_eval  # keep eval out of tok/s
                    self.save_resume()
        except KeyboardInterrupt:
            self.save_resume()
            if self.dev is None and self.is_main:
                with self.averaged_weights():
                    model.save(self.out, cfg.to_dict(), dtype=self.save_dtype)
            for cb in self.callbacks:
                cb.on_train_end(self)
            raise Interrupted(
                f"interrupted at step {self.step}/{self.total_steps}; state saved in {self.dir}/ "
                "(run the same command with --resume to continue)"
            ) from None
        finally:
            for sig, old in old_handlers.items():
                signal.signal(sig, old)
        if self.dev is None and self.is_main:
            with self.averaged_weights():
                model.save(self.out, cfg.to_dict(), dtype=self.save_dtype)
        self.save_resume(finished=True)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return {
            "steps": self.step,
            "elapsed_s": round(self.elapsed, 2),
            "stopped": self._stop_reason or "completed",
            "best": self.best_metrics,
            "output": str(self.out),
        }
