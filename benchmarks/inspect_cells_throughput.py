"""`seqtool inspect cells` on 1 MB of text: wall time, chars/s and peak RSS, against plain fused
nn.LSTM forwards of the same model over the same text, in the same run.

Each measurement is a fresh child process (its peak RSS is its own, read with os.wait4):

- cells:        `seqtool inspect cells FILE --threads N --format jsonl` (every unit's r with the
                built-in probes and a regex probe, and the 2,000-token page data);
- fused, 1:     the shipped LM's encoder (nn.LSTM) over the text as one batch-1 stream, state
                carried across 4,096-token windows: the plain way to run a text;
- fused, B:     the same nn.LSTM over the text cut into B streams (the layout cells uses, no
                warm-up, no statistics): what the arithmetic costs at that batch.

Usage:

    python benchmarks/inspect_cells_throughput.py                  # 1 MB, 1 thread
    python benchmarks/inspect_cells_throughput.py --chars 200000 --reference-chars 50000
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


def measure(cmd: list[str], threads: int) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process (os.wait4: its own peak)."""
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
        return wall, usage.ru_maxrss / 1024, out.read()


def child_fused(path: str, streams: int, threads: int) -> None:
    """Run the encoder over the text; print chars/s."""
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
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a in range(0, x.size(1), 4096 // streams if streams > 1 else 4096):
            _, state = m.backbone(x[:, a : a + max(1, 4096 // streams)], state=state)
    print(f"{n / (time.perf_counter() - t0):.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--reference-chars", type=int, default=0, help="0: the same text")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--streams", type=int, default=64, help="for the batched fused reference")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child_fused(a.child[0], int(a.child[1]), int(a.child[2]))
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
            ("fused nn.LSTM, batch 1", [sys.executable, __file__, "--child", str(ref), "1",
                                        str(a.threads)], len(ref.read_text())),
            (f"fused nn.LSTM, {a.streams} streams", [sys.executable, __file__, "--child",
                                                     str(big), str(a.streams), str(a.threads)],
             len(text)),
            ("seqtool inspect cells", [sys.executable, "-m", "seqtool", "inspect", "cells",
                                       str(big), "--threads", str(a.threads), "--format",
                                       "jsonl", "--probe", "speaker=^[A-Z][A-Z ]*:$"],
             len(text)),
        ):  # fmt: skip
            wall, rss, out = measure(cmd, a.threads)
            rate = float(out) if "cells" not in name else n / wall
            rows.append((name, n, wall, rate, rss))
            print(f"{name:32s} {n:>9,} chars  {wall:7.1f} s wall  {rate:8,.0f} chars/s  "
                  f"peak RSS {rss:6.0f} MB", flush=True)  # fmt: skip
        cells = rows[-1][3]
        for name, _, _, rate, _ in rows[:-1]:
            print(f"inspect cells / {name}: {cells / rate:.2f}x the chars/s")
        print(f"1 MB projected: {1_000_000 / cells:.0f} s for inspect cells")


if __name__ == "__main__":
    main()
