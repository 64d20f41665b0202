"""torchrun: two CPU processes (gloo) train the same model as one process with the same
global batch."""

from __future__ import annotations

import subprocess
import sys

from conftest import SAMPLE

from seqtool import api

ARGS = [
    "train",
    "lm",
    str(SAMPLE),
    "--dev-fraction",
    "0",
    "--hidden",
    "16",
    "--embedding-dim",
    "10",
    "--layers",
    "2",
    "--dropout",
    "0",
    "--cell",
    "lstm",
    "--steps",
    "12",
    "--batch-size",
    "8",
    "--seq-len",
    "24",
    "--warmup",
    "2",
    "--lr",
    "0.01",
    "--threads",
    "1",
    "--seed",
    "5",
]


def test_two_gloo_ranks_match_one_process(tmp_path):
    single = tmp_path / "single.safetensors"
    p = subprocess.run(
        [sys.executable, "-m", "seqtool", *ARGS, "-o", str(single)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    ddp = tmp_path / "ddp.safetensors"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "seqtool",
            *ARGS,
            "-o",
            str(ddp),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout == ""
    assert p.stderr.count("saved ") == 1  # rank 0 reports, rank 1 stays quiet
    a, b = api.load(single).state_dict(), api.load(ddp).state_dict()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
    # every rank keeps its own RNG and data position for --resume
    assert (tmp_path / "ddp.run" / "resume-rank1.pt").is_file()
