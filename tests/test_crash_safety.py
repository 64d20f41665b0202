"""SIGKILL at random moments: the last checkpoint always loads, a plain rerun refuses to
throw the state away, and --resume finishes with the weights of a run never killed."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SAMPLE, run_cli

from seqtool import api

STEPS = 120
ARGS = [
    "-m",
    "seqtool",
    "train",
    "lm",
    str(SAMPLE),
    "--hidden",
    "16",
    "--embedding-dim",
    "8",
    "--layers",
    "1",
    "--steps",
    str(STEPS),
    "--eval-every",
    "5",
    "--batch-size",
    "4",
    "--seq-len",
    "16",
    "--threads",
    "1",
    "--seed",
    "1",
]


def _weights(path):
    return api.load(path).state_dict()


def test_sigkill_then_resume_reaches_the_same_final_weights(tmp_path):
    # the uninterrupted run, in-process through the same entry point
    ref = tmp_path / "ref.safetensors"
    r = run_cli(*ARGS[2:], "-o", ref)
    assert r.code == 0, r
    want = _weights(tmp_path / "ref.run" / "last.safetensors")
    rng = random.Random(1234)
    refused = 0
    for attempt in range(2):
        out = tmp_path / f"m{attempt}.safetensors"
        run = tmp_path / f"m{attempt}.run"
        proc = subprocess.Popen(
            [sys.executable, *ARGS, "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while not (run / "resume.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        # the first attempt dies as soon as state exists (surely mid-run); the next one
        # somewhere in training, maybe mid-write
        time.sleep(0.0 if attempt == 0 else rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # whatever moment it died at, what is on disk is whole
        last = api.load(run / "last.safetensors")
        assert last.task == "lm"
        state = torch.load(run / "resume.pt", weights_only=True)
        assert 0 < state["step"] <= STEPS
        if out.exists():
            api.load(out)
        if not state["finished"] and not refused:  # killed mid-run: a plain rerun must not
            refused += 1  # drop its state (checked once: each check starts a process)
            saved = (run / "resume.pt").read_bytes()
            r = subprocess.run(
                [sys.executable, *ARGS, "-o", str(out)], capture_output=True, text=True, timeout=300
            )
            assert r.returncode == 2, r.stderr[-2000:]
            msg = r.stderr.strip().splitlines()
            assert len(msg) == 1 and "interrupted run" in msg[0], r.stderr[-2000:]
            assert "--resume" in msg[0] and "--restart" in msg[0]
            assert (run / "resume.pt").read_bytes() == saved  # its state untouched
        r = subprocess.run(
            [sys.executable, *ARGS, "-o", str(out), "--resume"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        final = torch.load(run / "resume.pt", weights_only=True)
        assert final["step"] == STEPS and final["finished"]
        rows = [json.loads(x) for x in (run / "metrics.jsonl").open()]
        assert rows[-1]["step"] == STEPS
        # killed and resumed, it ends with the weights of the run that never stopped
        got = _weights(run / "last.safetensors")
        same = got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
        # (a kill between a save's two writes included: resume.pt carries the weights of its
        # step, test_a_kill_between_the_two_writes_of_a_save)
        assert same, f"attempt {attempt}: killed at step {state['step']}, resumed to other weights"
    assert refused == 1  # the first attempt was killed mid-run, and its rerun refused


class Killed(BaseException):
    """What SIGKILL does to the process, in-process: nothing after it runs, no handler."""


def test_a_kill_between_the_two_writes_of_a_save(tmp_path, monkeypatch):
    """Killed after the second save wrote last.safetensors, before it wrote resume.pt:
    --resume must still end where an uninterrupted run does."""
    from seqtool import checkpoint
    from seqtool.config import TrainConfig

    cfg = TrainConfig(steps=12, batch_size=4, seq_len=16, eval_every=5, threads=1, seed=1)
    kw = dict(files=[str(SAMPLE)], backbone=dict(hidden_size=8, embedding_dim=8, layers=1))
    api.train("lm", tmp_path / "full.safetensors", cfg, **kw)
    real, saves = checkpoint.atomic_write_bytes, []

    def write(path, data):
        if str(path).endswith("resume.pt"):
            saves.append(path)
            if len(saves) == 2:  # step 10: its weights are on disk, its state is not
                raise Killed
        real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)
    part = tmp_path / "part.safetensors"
    with pytest.raises(Killed):
        api.train("lm", part, cfg, **kw)
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    assert torch.load(tmp_path / "part.run" / "resume.pt", weights_only=True)["step"] == 5
    api.train("lm", part, cfg, resume=True, **kw)
    a = _weights(tmp_path / "full.run" / "last.safetensors")
    b = _weights(tmp_path / "part.run" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
