"""bf16 autocast against fp32 on quality: the same char-LM config, seed and steps trained
twice with the seqtool trainer, then both scored on the dev text the same way
(`seqtool eval`'s carried-state nats/char, in fp32). Prints both losses, their difference
and the training-throughput ratio measured in the same run. Usage:

    python benchmarks/lm_bf16_quality.py                          # 2x256, 1,000 steps, 1 thread
    python benchmarks/lm_bf16_quality.py --hidden 512 --steps 3000 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from seqtool import api
from seqtool.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora" / "lm"
TRAIN, DEV = CORPORA / "train.txt", CORPORA / "dev.txt"
if not TRAIN.is_file():  # no shared corpora: a smoke run on the sample (numbers meaningless)
    TRAIN = DEV = ROOT / "corpora" / "play-sample.txt"


def run(precision: str, args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """(dev nats/char, training tokens/s) of one training run."""
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        seq_len=args.seq_len,
        lr=3e-3,
        warmup=100,
        precision=precision,
        threads=args.threads,
        device="cpu",
        seed=args.seed,
        log_every=50,
    )
    backbone = dict(
        cell="lstm",
        layers=args.layers,
        hidden_size=args.hidden,
        embedding_dim=args.embedding,
        dropout=args.dropout,
    )
    t0 = time.perf_counter()
    summary = api.train("lm", out, cfg, files=[str(TRAIN)], backbone=backbone)
    dt = time.perf_counter() - t0
    tokens_per_s = args.steps * args.batch * args.seq_len / summary["elapsed_s"]
    metrics = api.evaluate(out, str(DEV), threads=args.threads)
    print(
        f"{precision}: dev {metrics['nats_per_char']:.4f} nats/char, "
        f"{tokens_per_s:,.0f} training tokens/s ({dt:.0f} s in all)",
        flush=True,
    )
    return metrics["nats_per_char"], tokens_per_s


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embedding", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(
        f"char LM {args.layers}x{args.hidden} LSTM, {args.steps} steps of {args.batch}x{args.seq_len}, "
        f"{args.threads} thread(s), {TRAIN.name}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as d:
        fp32, fp32_speed = run("fp32", args, Path(d) / "fp32.safetensors")
        bf16, bf16_speed = run("bf16", args, Path(d) / "bf16.safetensors")
    print(f"dev loss bf16 - fp32: {bf16 - fp32:+.4f} nats/char (target: within 0.03)")
    print(f"throughput bf16 / fp32: {bf16_speed / fp32_speed:.2f}x")


if __name__ == "__main__":
    main()
