"""SIGKILL at random moments: the last checkpoint always loads, a plain rerun refuses to
throw the state away, and --resume finishes with the weights of a run never killed."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

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
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert refused == 1  # the first attempt was killed mid-run, and its rerun refused
