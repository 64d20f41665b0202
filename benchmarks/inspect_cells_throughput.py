"""`seqtool inspect cells` on 1 MB of text: wall time, chars/s and peak RSS, against plain fused
nn.LSTM forwards of the same model over the same text, in the same run.

Each measurement is a fresh child process (its peak RSS is its own, read with os.wait4):

- cells:        `seqtool inspect cells FILE --threads N --format jsonl` (every unit's r with the
                built-in probes and a regex probe, and the 2,000-token page data);
- fused, 1:     the shipped LM's encoder (nn.LSTM) over the text as one batch-1 stream, state
                carried across 4,096-token windows: the plain way to run a text;
- fused, B:     the same nn.LSTM over the text cut into B streams (the layout cells uses, no
                warm-up, no statistics): what the arithmetic costs at that batch.

Rates are characters per CPU-second of each child (wall time is printed too): on a shared
machine the CPU time is what one thread's work costs, whatever else runs beside it.

Usage:

    python benchmarks/inspect_cells_throughput.py                  # 1 MB, 1 thread
    python benchmarks/inspect_cells_throughput.py --chars 100000 --reference-chars 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "lm" / "train.txt"
MODEL = ROOT / "checkpoints" / "lm-shakespeare.safetensors"


def measure(cmd: list[str], threads: int) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS in MB, stdout) of one child process (os.wait4:
    its own peak and CPU time)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def child_fused(path: str, streams: int, threads: int) -> None:
    """Run the encoder over the text (the parent times the whole child)."""
    import torch

    from seqtool import api

    torch.set_num_threads(threads)
    m = api.load(str(MODEL))
    m.eval()
    text = Path(path).read_text()
    ids = torch.tensor(m.tokenizer.encode(text))
    n = len(ids) // streams * streams
    x = ids[:n].view(streams, -1)  # (B, T/B)
    state = None
    step = max(1, 4096 // streams)  # window length: 4,096 tokens a window
    with torch.inference_mode():
        for a in range(0, x.size(1), step):
            _, state = m.backbone(x[:, a : a + step], state=state)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--reference-chars", type=int, default=50_000, help="0: the same text")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--streams", type=int, default=0, help="batched fused reference (0: as cells picks)"
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child_fused(a.child[0], int(a.child[1]), int(a.child[2]))
    a.streams = a.streams or max(1, min(64, a.chars // 8000))  # cells' rule at --warmup 1000
    text = CORPUS.read_text()[: a.chars] if CORPUS.is_file() else ""
    if len(text) < a.chars:
        sys.exit(f"needs {a.chars} characters of {CORPUS}")
    with tempfile.TemporaryDirectory() as d:
        big = Path(d) / "text.txt"
        big.write_text(text)
        ref = Path(d) / "ref.txt"
        ref.write_text(text[: a.reference_chars or a.chars])
        print(f"{len(text):,} chars, {a.threads} thread(s), model {MODEL.name}", flush=True)
        rows = []
        for name, cmd, n in (
            ("seqtool inspect cells", [sys.executable, "-m", "seqtool", "inspect", "cells",
                                       str(big), "--threads", str(a.threads), "--format",
                                       "jsonl", "--probe", "speaker=^[A-Z][A-Z ]*:$"],
             len(text)),
            (f"fused nn.LSTM, {a.streams} streams", [sys.executable, __file__, "--child",
                                                     str(big), str(a.streams), str(a.threads)],
             len(text)),
            ("fused nn.LSTM, batch 1", [sys.executable, __file__, "--child", str(ref), "1",
                                        str(a.threads)], len(ref.read_text())),
        ):  # fmt: skip
            wall, cpu, rss, _ = measure(cmd, a.threads)
            rows.append((name, n, cpu, n / cpu, rss))
            print(f"{name:30s} {n:>9,} chars  {wall:7.1f} s wall  {cpu:7.1f} s CPU  "
                  f"{n / cpu:7,.0f} chars/CPU-s  peak RSS {rss:5.0f} MB", flush=True)  # fmt: skip
        cells = rows[0][3]
        for name, _, _, rate, _ in rows[1:]:
            print(f"inspect cells / {name}: {cells / rate:.2f}x the chars per CPU-second")
        print(f"1 MB at this rate: {1_000_000 / cells:.0f} CPU-s for inspect cells "
              "(CPU time includes start-up and model loading, for every row)")  # fmt: skip


if __name__ == "__main__":
    main()
