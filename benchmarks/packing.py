"""Padded batches through the recurrent stack: backbone/recurrent.py's one dense call per
distinct length against torch's pack_padded_sequence, at the shipped shapes.

Batches are the trainer's own (data/batching.bucket_batches) over real lengths: SST-2 and
IMDB train as the shipped sentiment model tokenizes them (IMDB cut at 320 tokens, batch 64,
1x192 BiLSTM over 128-d embeddings) and EWT train's sentence lengths in words (batch 32,
2x200 BiLSTM over 300-d word+char features). A fixed random sample of batches runs through
both paths, unidirectional and bidirectional, forward only (no grad) and forward+backward,
alternating per batch and repeated; each batch's median over the repeats counts, summed over
the batches of a group. Times are this process's CPU time (1 thread), so a busy machine
inflates them less than wall time would. "few" is the batches with at most 3 distinct lengths (the ones
Recurrent.forward sends down the per-length path), "many" the others, "all" the whole
sample. Usage:

    python benchmarks/packing.py                       # 1 thread, all shapes
    python benchmarks/packing.py --shapes sst --batches 5 --repeats 1   # a quick smoke run
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seqtool.backbone import Recurrent
from seqtool.data.batching import bucket_batches

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
# name: (file, input size, hidden, layers, batch size)
SHAPES = {
    "sst": ("sentiment/sst2_train.csv", 128, 192, 1, 64),
    "imdb": ("sentiment/imdb_train.csv", 128, 192, 1, 64),
    "ewt": ("pos/en_ewt-ud-train.conllu", 300, 200, 2, 32),
}
MAX_LENGTH = 320  # the shipped sentiment model's --max-length


def lengths_of(name: str) -> np.ndarray:
    path = CORPORA / SHAPES[name][0]
    if not path.is_file():
        sys.exit(f"{path}: not found (the benchmark reads the shared corpora's lengths)")
    if name == "ewt":  # words per sentence: token lines with an integer id
        lens, n = [], 0
        for line in path.open(encoding="utf-8"):
            if not line.strip():
                if n:
                    lens.append(n)
                n = 0
            elif line.split("\t", 1)[0].isdigit():
                n += 1
        return np.array(lens + ([n] if n else []))
    from seqtool import api

    model = api.load(ROOT / "checkpoints" / "sentiment.safetensors", "classifier")
    with path.open(encoding="utf-8", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    return np.array([min(len(ids), MAX_LENGTH) for ids in model.encode(texts)])


def time_call(fn) -> float:
    """CPU seconds of fn(): on a shared machine, time spent descheduled is not counted."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def run_path(rec: Recurrent, x: torch.Tensor, lengths: torch.Tensor, path: str, train: bool):
    lens = lengths.tolist()
    with torch.set_grad_enabled(train):
        xi = x.requires_grad_(train) if train else x
        if path == "per-length":
            out, _ = rec._per_length(xi, lens, set(lens), None, rec.rnn)
        else:
            out, _ = rec.forward_packed(xi, lengths)
        if train:
            out.sum().backward()
            x.grad = None


def bench(name: str, args) -> None:
    _, inp, hidden, layers, batch = SHAPES[name]
    lens = lengths_of(name)
    batches = bucket_batches(lens, 0, batch, shuffle=True, seed=0)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(batches), min(args.batches, len(batches)), replace=False)
    sample = [torch.as_tensor(lens[batches[i]]) for i in pick]
    distinct = np.array([len(set(b.tolist())) for b in sample])
    few = distinct <= 3
    print(
        f"\n{name}: {len(lens)} sequences, median length {int(np.median(lens))}, max {lens.max()}; "
        f"{len(batches)} batches of {batch}, {np.mean([len(set(lens[b].tolist())) <= 3 for b in batches]):.0%} "
        f"with <= 3 distinct lengths; sample {len(sample)} batches ({few.sum()} with <= 3), "
        f"{layers}x{hidden} over {inp}-d inputs"
    )
    for bi in (False, True):
        torch.manual_seed(0)
        rec = Recurrent(inp, hidden, layers, "lstm", bidirectional=bi)
        xs = [torch.randn(len(b), int(b.max()), inp) for b in sample]  # (B, T, E)
        for b, x in zip(sample, xs, strict=True):  # the two paths agree (and warm up)
            with torch.no_grad():
                a = rec._per_length(x, b.tolist(), set(b.tolist()), None, rec.rnn)[0]
                p = rec.forward_packed(x, b)[0]
            assert torch.allclose(a, p, atol=1e-5), float((a - p).abs().max())
        for train in (False, True):
            t = {p: np.zeros((len(sample), args.repeats)) for p in ("per-length", "packed")}
            for r in range(args.repeats):
                for k, (b, x) in enumerate(zip(sample, xs, strict=True)):
                    order = ("per-length", "packed") if (k + r) % 2 else ("packed", "per-length")
                    for p in order:  # alternate which goes first
                        t[p][k, r] = time_call(
                            lambda rec=rec, x=x, b=b, p=p, train=train: run_path(
                                rec, x, b, p, train
                            )
                        )
            med = {p: np.median(v, axis=1) for p, v in t.items()}  # (batches,)
            parts = []
            for group, mask in (("few", few), ("many", ~few), ("all", np.ones_like(few))):
                if not mask.any():
                    continue
                pl, pk = med["per-length"][mask].sum(), med["packed"][mask].sum()
                parts.append(
                    f"{group}: per-length {1000 * pl / mask.sum():.1f} ms/batch, packed "
                    f"{1000 * pk / mask.sum():.1f}, per-length/packed {pl / pk:.2f}"
                )
            mode = "fwd+bwd" if train else "fwd    "
            print(f"  {'bi ' if bi else 'uni'} {mode} " + "; ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--batches", type=int, default=12, help="batches sampled per shape")
    ap.add_argument("--repeats", type=int, default=3, help="runs per batch; medians count")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), fp32, {args.repeats} repeats, "
        "CPU time"
    )
    for name in args.shapes:
        bench(name, args)


if __name__ == "__main__":
    main()
