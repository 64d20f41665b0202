"""The library surface the CLI and tests call: train(), load(), evaluate(), generate()."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqtool.config import TrainConfig
from seqtool.errors import SeqtoolError

# May change on resume. A new --time-budget extends (or shortens) the run: the schedule is
# then read against the new budget from the elapsed time so far.
RUNTIME_OPTIONS = {"threads", "device", "log_every", "max_time", "time_budget"}
# May grow on resume: a finished (or interrupted) --steps run is extended to the new end.
GROWING_OPTIONS = {"steps"}


def task_class(task: str) -> Any:
    """The TaskModel subclass registered for `task`."""
    from seqtool import tasks

    return tasks.get(task)


def split_options(task_cls: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Keyword options -> (the task's options_class instance, its config_class fields)."""
    own = {f.name for f in dataclasses.fields(task_cls.options_class)}
    model = {f.name for f in dataclasses.fields(task_cls.config_class)}
    unknown = sorted(set(options) - own - model)
    if unknown:
        raise SeqtoolError(f"train {task_cls.task}: unknown option(s) {', '.join(unknown)}")
    opts = task_cls.options_class(**{k: v for k, v in options.items() if k in own})
    return opts, {k: v for k, v in options.items() if k in model and k not in own}


def train(
    task: str,
    out: str | Path,
    train_cfg: TrainConfig,
    resume: bool = False,
    save_dtype: str = "fp32",
    console: Any = None,
    callbacks: list | None = None,
    backbone: dict[str, Any] | None = None,
    restart: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train a model of `task`. options: fields of the task's options_class (data, setup)
    and of its config_class (model); backbone: BackboneConfig fields. Returns a summary.

    resume: continue the run saved beside `out` (a larger train_cfg.steps extends it);
    restart: start over although an interrupted run is saved there (without either, that
    is refused, so no saved state is thrown away silently)."""
    from seqtool import checkpoint
    from seqtool.training import Trainer, runtime
    from seqtool.training.trainer import interrupted_run, run_dir

    out = Path(out)
    if out.is_dir():
        raise SeqtoolError(f"{out}: is a directory; -o takes a .safetensors file path")
    if resume and restart:
        raise SeqtoolError("--resume and --restart exclude each other")
    if not resume and not restart:
        where = interrupted_run(out)
        if where is not None:
            raise SeqtoolError(
                f"{run_dir(out)}/ holds an interrupted run ({where}): add --resume to continue "
                "it, or --restart to discard it and start over"
            )
    task_cls = task_class(task)
    opts, model_options = split_options(task_cls, options)
    runtime.set_threads(train_cfg.threads)
    runtime.seed_everything(train_cfg.seed)
    header = None
    if resume:
        last = run_dir(out) / "last.safetensors"
        if not last.is_file():
            raise SeqtoolError(f"--resume: nothing to resume in {run_dir(out)}/")
        header = checkpoint.read_header(last)
        saved = header.json("train_config", {})
        now = train_cfg.to_dict()
        # Where and how fast it runs may change on resume; what it computes may not.
        diff = sorted(k for k in saved if k not in RUNTIME_OPTIONS and saved[k] != now.get(k))
        diff = [k for k in diff if not (k in GROWING_OPTIONS and 0 < saved[k] < now.get(k, 0))]
        if diff:
            grow = [
                f"--{k} may only grow, from {saved[k]}"
                for k in diff
                if saved[k] and k in GROWING_OPTIONS
            ]
            raise SeqtoolError(
                f"--resume: training options differ from the saved run ({', '.join(diff)})"
                + "".join(f"; {g}" for g in grow)
            )
    from seqtool.tasks.base import Setup

    setup = Setup(opts, model_options, dict(backbone or {}), train_cfg, header)
    model, source, dev = task_cls.prepare(setup)
    # The resolved config goes to the run's files (config.json beside resume state), not
    # to the terminal: the trainer writes it when the run starts.
    callbacks = model.callbacks() + list(callbacks or [])
    trainer = Trainer(model, source, dev, train_cfg, out, save_dtype, callbacks, console)
    return trainer.fit(resume=resume)


def load(
    path: str | Path,
    task: str | tuple[str, ...] | None = None,
    command: str = "",
    device: str | None = None,
) -> Any:
    """A checkpoint by path or by name (`seqtool models`), on `device` (auto|cpu|cuda|mps;
    None: where it loads, the CPU); an absent device is an error before anything loads."""
    from seqtool import paths, tasks

    where = None
    if device is not None:
        from seqtool.training import runtime

        where = runtime.resolve_device(device)
    model = tasks.load(paths.resolve_model(path), task, command)
    return model if where is None or where.type == "cpu" else model.to(where)


def load_header(path: str | Path) -> Any:
    """The checkpoint's header (task, configs, metadata), read without loading weights."""
    from seqtool import checkpoint, paths

    return checkpoint.read_header(paths.resolve_model(path))


def evaluate(
    path: str | Path, data: str, threads: int = 0, device: str | None = None, **options: Any
) -> dict[str, Any]:
    """Metrics of the checkpoint at `path` on a data file, with the task's own metric.
    options: the `seqtool eval` options the task reads (its `eval_options`)."""
    from seqtool.checkpoint import article
    from seqtool.training import runtime

    runtime.set_threads(threads)
    model = load(path, device=device)
    extra = sorted(k for k in options if k not in model.eval_options)
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise SeqtoolError(
            f"{flags}: not an option of {article(model.task)} {model.task} model's evaluation"
        )
    return model.evaluate(model.eval_data(data, **options))


def report(path: str | Path, metrics: dict[str, Any]) -> list[Any]:
    """The extra tables (rich renderables) the checkpoint's task shows for these metrics."""
    return task_class(load_header(path).task).report(metrics)


def generate(
    model: Any,
    prompt: str = "",
    length: int = 200,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[str]:
    import torch

    from seqtool.decoding import check_sampling

    check_sampling(temperature, top_k, top_p)
    gen = torch.Generator(next(model.parameters()).device)  # sampling runs where the model is
    gen.manual_seed(seed if seed is not None else torch.seed())
    return model.generate(prompt, length, temperature, top_k, top_p, gen)
