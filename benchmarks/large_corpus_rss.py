"""Peak memory of `seqtool train lm` on a corpus larger than memory should allow.

Builds a >= 2 GB text file, trains a few steps on it twice (the first run tokenizes into the
memory-mapped cache, the second reuses it) and reports each run's peak RSS and wall time,
against a plain-PyTorch reference that reads the text into memory and encodes it to a
token tensor (measured on the same file in the same run).

    python benchmarks/large_corpus_rss.py              # 2 GB in a temp dir
    python benchmarks/large_corpus_rss.py --gb 4 --keep /data/big.txt
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "corpora" / "lm" / "train.txt"
if not SOURCE.is_file():
    SOURCE = ROOT / "corpora" / "play-sample.txt"

REFERENCE = """
import sys, numpy as np, torch
text = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(text[:10_000_000]))
lut = np.zeros(0x110000, dtype=np.int16)
for i, c in enumerate(chars):
    lut[ord(c)] = i + 4
ids = torch.from_numpy(lut[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)])
print(ids.numel())
"""


def peak_rss_mb(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(peak RSS of the child in MB, wall seconds, exit code)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # a fresh child per measurement, so ru_maxrss is this command's alone
        p = subprocess.run(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if p.returncode:
            sys.stderr.write(p.stderr[-2000:])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        Path(env["RSS_OUT"]).write_text(f"{peak} {p.returncode}")
        os._exit(0)
    os.waitpid(pid, 0)
    peak, code = Path(env["RSS_OUT"]).read_text().split()
    return int(peak) / 1024, time.perf_counter() - t0, int(code)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--keep", help="write the corpus here and keep it")
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqtool-rss-"))
    big = Path(args.keep) if args.keep else work / "big.txt"
    piece = SOURCE.read_bytes()
    if not piece.endswith(b"\n"):
        piece += b"\n"
    target = int(args.gb * (1 << 30))
    if not big.is_file() or big.stat().st_size < target:
        with big.open("wb") as f:
            for _ in range(target // len(piece) + 1):
                f.write(piece)
    size_gb = big.stat().st_size / (1 << 30)
    env = {**os.environ, "SEQTOOL_CACHE": str(work / "cache"), "RSS_OUT": str(work / "rss")}
    cmd = [
        sys.executable,
        "-m",
        "seqtool",
        "train",
        "lm",
        str(big),
        "-o",
        str(work / "m.safetensors"),
        "--steps",
        str(args.steps),
        "--hidden",
        "256",
        "--threads",
        "1",
        "--dev-fraction",
        "0.001",
        "--eval-every",
        str(args.steps),
    ]
    print(f"corpus {size_gb:.2f} GB ({big})")
    for label in ("first run (tokenize + cache)", "second run (cache reused)"):
        mb, wall, code = peak_rss_mb(cmd, env)
        print(f"seqtool train lm, {label}: peak RSS {mb:,.0f} MB, {wall:.0f} s, exit {code}")
        if label.startswith("first"):
            first = mb
    if not args.no_reference:
        mb, wall, code = peak_rss_mb([sys.executable, "-c", REFERENCE, str(big)], env)
        print(
            f"plain reference (read all, encode to an int16 tensor): peak RSS {mb:,.0f} MB, "
            f"{wall:.0f} s, exit {code}"
        )
        print(f"ratio seqtool/reference peak RSS: {first / mb:.3f}")
    if not args.keep:
        big.unlink()
    for p in (work / "cache" / "tokens").glob("*"):
        p.unlink()


if __name__ == "__main__":
    main()
