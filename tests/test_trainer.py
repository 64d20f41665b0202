"""The generic trainer: learning, exact resume after an interrupt, early stopping, schedule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import SAMPLE

from seqtool import api
from seqtool.config import TrainConfig
from seqtool.training import Interrupted
from seqtool.training.callbacks import Callback
from seqtool.training.trainer import lr_lambda

BACKBONE = dict(hidden_size=16, embedding_dim=10, layers=1, cell="gru")


def _cfg(**kw):
    base = dict(steps=40, batch_size=8, seq_len=32, warmup=4, lr=0.01, eval_every=10, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _train(out, cfg, **kw):
    return api.train("lm", out, cfg, files=[str(SAMPLE)], backbone=BACKBONE, **kw)


def _log(out):
    rows = [json.loads(x) for x in (out.parent / (out.stem + ".run") / "metrics.jsonl").open()]
    return [r["loss"] for r in rows if "loss" in r], [r["dev"] for r in rows if "dev" in r]


def test_loss_falls_on_tiny_corpus(tmp_path):
    out = tmp_path / "m.safetensors"
    summary = _train(out, _cfg(steps=60))
    losses, devs = _log(out)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.5
    assert devs[-1]["nats_per_char"] < devs[0]["nats_per_char"]
    assert summary["steps"] == 60 and out.is_file()


class InterruptAt(Callback):
    """What Ctrl-C does, at a chosen step."""

    def __init__(self, step: int) -> None:
        self.at = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.at:
            trainer.request_interrupt()


@pytest.mark.parametrize("stop_at", [7, 20])  # mid-interval and right after an evaluation
def test_interrupted_then_resumed_matches_uninterrupted(tmp_path, stop_at):
    cfg = _cfg(seed=3)
    full = tmp_path / "full.safetensors"
    _train(full, cfg)
    part = tmp_path / "part.safetensors"
    with pytest.raises(Interrupted, match=f"step {stop_at}/40"):
        _train(part, cfg, callbacks=[InterruptAt(stop_at)])
    _train(part, cfg, resume=True)
    full_losses, full_dev = _log(full)
    part_losses, part_dev = _log(part)
    assert part_losses == pytest.approx(full_losses, abs=0, rel=0)  # step for step, bit for bit
    assert [d["nats_per_char"] for d in part_dev] == [d["nats_per_char"] for d in full_dev]
    a = api.load(full.parent / "full.run" / "last.safetensors").state_dict()
    b = api.load(part.parent / "part.run" / "last.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_nothing_to_resume(tmp_path):
    from seqtool.errors import SeqtoolError

    with pytest.raises(SeqtoolError, match="nothing to resume"):
        _train(tmp_path / "x.safetensors", _cfg(), resume=True)


def test_resume_refuses_model_changes_and_takes_a_new_lr(tmp_path):
    from seqtool.errors import SeqtoolError

    out = tmp_path / "m.safetensors"
    with pytest.raises(Interrupted):
        _train(out, _cfg(), callbacks=[InterruptAt(5)])
    bigger = {**BACKBONE, "hidden_size": 32}
    with pytest.raises(SeqtoolError, match=r"--hidden 32 \(the run has 16\)"):
        api.train("lm", out, _cfg(), files=[str(SAMPLE)], backbone=bigger, resume=True)
    with pytest.raises(SeqtoolError, match=r"--batch-size 4 \(the run has 8\)"):
        _train(out, _cfg(batch_size=4), resume=True)  # the data order would change
    _train(out, _cfg(lr=0.02), resume=True)  # how it trains may change
    rows = [json.loads(x) for x in (tmp_path / "m.run" / "metrics.jsonl").open()]
    lrs = {r["step"]: r["lr"] for r in rows if "lr" in r}
    assert lrs[5] <= 0.01 and lrs[6] > 0.01  # the new peak from the step resumed at


def test_early_stopping(tmp_path):
    out = tmp_path / "m.safetensors"
    # lr so small nothing improves past noise: patience 1 must stop long before 400 steps
    summary = _train(out, _cfg(steps=400, lr=1e-9, warmup=0, patience=1, eval_every=5))
    assert summary["stopped"].startswith("early stop")
    assert summary["steps"] < 400


def test_warmup_then_cosine_schedule():
    f = lr_lambda(TrainConfig(warmup=10, schedule="cosine", min_lr_ratio=0.1), 110)
    assert f(0) == pytest.approx(0.1)
    assert f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55)
    assert f(110) == pytest.approx(0.1)
    g = lr_lambda(TrainConfig(warmup=0, schedule="linear", min_lr_ratio=0.0), 100)
    assert g(50) == pytest.approx(0.5)


def test_seed_makes_runs_reproducible(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    _train(a, _cfg(steps=15, seed=11))
    _train(b, _cfg(steps=15, seed=11))
    assert _log(a)[0] == _log(b)[0]


def test_time_budget_schedule_follows_elapsed_time(tmp_path):
    out = tmp_path / "m.safetensors"
    summary = _train(out, _cfg(steps=0, time_budget=0.05, warmup=0, eval_every=0))
    assert summary["stopped"].startswith("time limit")
    rows = [json.loads(x) for x in (tmp_path / "m.run" / "metrics.jsonl").open()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[0] > 0.009 and lrs[-1] < 0.003  # decayed towards min_lr_ratio * lr by the end


class Capture(Callback):
    """Keeps the trainer so a test can look at its state after fit()."""

    def on_train_start(self, trainer):
        self.trainer = trainer


def test_ema_is_evaluated_and_saved_and_resumes_exactly(tmp_path):
    cfg = _cfg(seed=5, ema=0.9, steps=30, eval_every=30)
    full = tmp_path / "full.safetensors"
    cap = Capture()
    _train(full, cfg, callbacks=[cap])
    ema = cap.trainer.ema
    params = [p.detach() for p in cap.trainer.model.parameters()]
    assert ema is not None and any(not torch.equal(a, b) for a, b in zip(ema, params, strict=True))
    # The saved (best) model holds the average; last.safetensors the raw weights to resume from.
    saved = list(api.load(full).parameters())
    assert all(torch.equal(a, b) for a, b in zip(saved, ema, strict=True))
    last = list(api.load(tmp_path / "full.run" / "last.safetensors").parameters())
    assert all(torch.equal(a, b) for a, b in zip(last, params, strict=True))
    # The dev score logged is the averaged model's.
    dev_logged = _log(full)[1][-1]["nats_per_char"]
    assert dev_logged == pytest.approx(
        api.load(full).evaluate(cap.trainer.dev)["nats_per_char"], abs=1e-4
    )
    # Interrupt + resume continues the average exactly.
    part = tmp_path / "part.safetensors"
    with pytest.raises(Interrupted):
        _train(part, cfg, callbacks=[InterruptAt(13)])
    _train(part, cfg, resume=True)
    a, b = api.load(full).state_dict(), api.load(part).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_averaged_weights_swaps_in_and_back(tmp_path):
    cap = Capture()
    _train(tmp_path / "m.safetensors", _cfg(steps=5, ema=0.5, eval_every=5), callbacks=[cap])
    t = cap.trainer
    before = [p.detach().clone() for p in t.model.parameters()]
    with t.averaged_weights():
        inside = [p.detach().clone() for p in t.model.parameters()]
    after = list(t.model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(inside, t.ema, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_ema_out_of_range_is_a_config_error():
    from seqtool.errors import ConfigError

    with pytest.raises(ConfigError, match="ema"):
        TrainConfig(ema=1.0)


def test_resume_may_extend_the_time_budget(tmp_path):
    out = tmp_path / "m.safetensors"
    short = _cfg(steps=0, time_budget=0.01, warmup=0, eval_every=0)
    first = _train(out, short)
    assert first["stopped"].startswith("time limit")
    longer = _cfg(steps=0, time_budget=0.03, warmup=0, eval_every=0)
    second = _train(out, longer, resume=True)
    assert second["steps"] > first["steps"] and second["elapsed_s"] >= 0.03 * 60


# -- nothing lost: an interrupted run is resumed or explicitly restarted --------------------


def test_new_run_into_an_interrupted_run_is_refused(tmp_path):
    from seqtool.errors import SeqtoolError

    out = tmp_path / "m.safetensors"
    with pytest.raises(Interrupted):
        _train(out, _cfg(), callbacks=[InterruptAt(5)])
    state = tmp_path / "m.run" / "resume.pt"
    saved = state.read_bytes()
    with pytest.raises(
        SeqtoolError, match=r"interrupted run \(step 5 of 40\).*--resume.*--restart"
    ):
        _train(out, _cfg())
    assert state.read_bytes() == saved
    with pytest.raises(SeqtoolError, match="exclude each other"):
        _train(out, _cfg(), resume=True, restart=True)
    summary = _train(out, _cfg(steps=10), restart=True)  # starts over: a fresh log
    assert summary["steps"] == 10 and len(_log(out)[0]) == 10
    assert torch.load(state, weights_only=True)["finished"]


def test_finished_run_is_replaced_only_with_overwrite(tmp_path):
    from seqtool.errors import SeqtoolError

    out = tmp_path / "m.safetensors"
    _train(out, _cfg(steps=10, seed=4))
    first = _log(out)
    with pytest.raises(SeqtoolError, match=r"already holds a trained model \(an lm, 10 steps\)"):
        _train(out, _cfg(steps=10, seed=5))
    assert _log(out) == first  # untouched
    assert _train(out, _cfg(steps=10, seed=4), overwrite=True)["steps"] == 10
    assert _log(out) == first  # a fresh run, not appended to the old one


def test_killed_run_counts_as_interrupted(tmp_path):
    from seqtool.training.trainer import interrupted_run

    out = tmp_path / "m.safetensors"
    _train(out, _cfg(steps=10))
    state = tmp_path / "m.run" / "resume.pt"
    assert interrupted_run(out) is None
    # What a kill between two saves leaves: the last periodic save, not marked finished.
    s = torch.load(state, weights_only=True)
    torch.save({**s, "step": 7, "finished": False}, state)
    assert interrupted_run(out) == "step 7 of 10"
    # State saved before the flag existed: finished when it reached its --steps.
    torch.save({k: v for k, v in s.items() if k != "finished"}, state)
    assert interrupted_run(out) is None
    state.write_bytes(b"not a resume state")
    assert "unreadable" in interrupted_run(out)


def test_finished_steps_run_is_extended_with_resume(tmp_path):
    from seqtool.errors import SeqtoolError

    out = tmp_path / "m.safetensors"
    _train(out, _cfg(steps=20))
    summary = _train(out, _cfg(steps=30), resume=True)
    assert summary["steps"] == 30 and summary["stopped"] == "completed"
    rows = [json.loads(x) for x in (tmp_path / "m.run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 31))
    with pytest.raises(SeqtoolError, match="--steps 25 is below the 30 steps"):
        _train(out, _cfg(steps=25), resume=True)


# -- progress without a terminal ------------------------------------------------------------


def _train_cli(tmp_path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`seqtool train lm` through the real entry point, stderr piped (not a terminal)."""
    args = [sys.executable, "-m", "seqtool", "train", "lm", str(SAMPLE)]
    args += ["-o", str(tmp_path / "m.safetensors"), "--hidden", "8", "--embedding-dim", "8"]
    args += ["--layers", "1", "--threads", "1", "--batch-size", "4", "--seq-len", "16", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path):
    p = _train_cli(
        tmp_path,
        *("--steps", "12", "--log-every", "5", "--eval-every", "3"),
        env={**os.environ, "SEQTOOL_PROGRESS_SECONDS": "0"},  # every step, not every 10 s
    )
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    plain = [x for x in lines if re.match(r"step \d+/12  (?!dev)", x)]
    assert [int(x.split()[1].split("/")[0]) for x in plain] == list(range(1, 13))
    for line in plain[:4]:  # before the first logged loss: no loss, no rate, never "0 tok/s"
        assert "loss" not in line and "tok/s" not in line and "elapsed" in line
    for line in plain[4:]:
        assert re.search(r"loss \d+\.\d{3}  [\d,]+ tok/s  elapsed \d+:\d\d  ETA \d+:\d\d", line)
    assert not re.search(r"(?<![\d,])0 tok/s", p.stderr)  # the step-3 dev line has no rate yet
    # The resolved config is in the run's files, not a wrapped JSON line on stderr.
    assert not any(x.startswith("config ") for x in lines)
    assert "config in" in lines[0]
    config = json.loads((tmp_path / "m.run" / "config.json").read_text())
    assert config["task"] == "lm" and config["train"]["steps"] == 12
    assert config["model"]["backbone"]["hidden_size"] == 8


def test_plain_progress_is_every_few_seconds_by_default(tmp_path, monkeypatch):
    from seqtool.training import callbacks

    monkeypatch.delenv("SEQTOOL_PROGRESS_SECONDS", raising=False)
    assert callbacks._plain_every() == callbacks.PLAIN_EVERY == 10.0  # the documented default
    # A run inside the interval (an hour: no race with a loaded machine's clock): the start
    # line, two dev lines and the summary, no step lines.
    env = {**os.environ, "SEQTOOL_PROGRESS_SECONDS": "3600"}
    p = _train_cli(tmp_path, "--steps", "12", "--eval-every", "6", env=env)
    assert p.returncode == 0, p.stderr
    assert not [x for x in p.stderr.splitlines() if re.match(r"step \d+/12  (?!dev)", x)]
    assert len([x for x in p.stderr.splitlines() if re.match(r"step \d+/12  dev", x)]) == 2
