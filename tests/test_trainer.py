"""The generic trainer: learning, exact resume after an interrupt, early stopping, schedule."""

from __future__ import annotations

import json

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


def test_resume_refuses_changed_options(tmp_path):
    from seqtool.errors import SeqtoolError

    out = tmp_path / "m.safetensors"
    with pytest.raises(Interrupted):
        _train(out, _cfg(), callbacks=[InterruptAt(5)])
    with pytest.raises(SeqtoolError, match="lr"):
        _train(out, _cfg(lr=0.5), resume=True)


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
