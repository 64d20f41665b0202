"""--ema step-time cost: a plain PyTorch char-LM training loop (Embedding -> 2x512 nn.LSTM ->
Linear, AdamW, clipping; the shipped LM shape) without a weight average, against the same loop
calling seqtool's ema.update (torch.optim.swa_utils.get_ema_multi_avg_fn) after each step, and
against a per-tensor `lerp_` loop.

All variants run in this one process on the same batches, alternating, repeated; the printed
figures are medians of the per-repeat ms/step in CPU time (1 thread; time spent descheduled on
a shared machine is not counted), and the ratios compare with the loop without EMA.
Usage:

    python benchmarks/ema_overhead.py                  # 1 thread, 2x512, batch 32x128
    python benchmarks/ema_overhead.py --hidden 64 --steps 5 --repeats 1   # a quick smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from seqtool.training import ema


def _lerp_loop(average: list[torch.Tensor], model: nn.Module, decay: float, step: int) -> None:
    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for a, p in zip(average, model.parameters(), strict=True):
            a.lerp_(p, 1.0 - decay)


def run(args, variant: str) -> tuple[float, float]:
    """Median ms per training step of the plain loop with the given EMA variant, and of the
    EMA update alone (timed separately, so the machine's noise on the step hides it less)."""
    torch.manual_seed(0)
    vocab = 65
    model = nn.ModuleDict(
        {
            "emb": nn.Embedding(vocab, args.embedding),
            "rnn": nn.LSTM(
                args.embedding, args.hidden, args.layers, batch_first=True, dropout=0.25
            ),
            "head": nn.Linear(args.hidden, vocab),
        }
    )
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    average = [p.detach().clone() for p in params] if variant != "none" else None
    update = {"seqtool": ema.update, "lerp loop": _lerp_loop}.get(variant)
    g = torch.Generator().manual_seed(0)
    times, updates = [], []
    for step in range(args.steps + 1):  # the first step warms up and is not counted
        win = torch.randint(0, vocab, (args.batch, args.seq_len + 1), generator=g)
        t0 = time.process_time()
        out, _ = model["rnn"](model["emb"](win[:, :-1]))  # (B, T, H)
        logits = model["head"](out)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), win[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t1 = time.process_time()
        if update is not None:
            update(average, model, args.decay, step)
        if step:
            times.append(time.process_time() - t0)
            updates.append(time.process_time() - t1)
    return 1000 * statistics.median(times), 1000 * statistics.median(updates)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--embedding", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--decay", type=float, default=0.999)
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs; medians count")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = sum(
        p.numel()
        for m in (
            nn.Embedding(65, args.embedding),
            nn.LSTM(args.embedding, args.hidden, args.layers),
        )
        for p in m.parameters()
    )
    print(
        f"{args.layers}x{args.hidden} LSTM (~{n / 1e6:.1f}M weights), batch {args.batch}x"
        f"{args.seq_len}, --ema {args.decay}, {args.steps} steps x {args.repeats} repeats, "
        f"{args.threads} thread(s); medians"
    )
    variants = ("none", "seqtool", "lerp loop")
    ms: dict[str, list[float]] = {v: [] for v in variants}
    upd: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):  # alternate so drift on a shared machine hits all variants
        for v in variants:
            step_ms, update_ms = run(args, v)
            ms[v].append(step_ms)
            upd[v].append(update_ms)
    base = statistics.median(ms["none"])
    label = {"none": "no EMA", "seqtool": "seqtool ema.update", "lerp loop": "per-tensor lerp_"}
    for v in variants:
        m, u = statistics.median(ms[v]), statistics.median(upd[v])
        print(
            f"{label[v]:>20}: {m:8.1f} ms/step, ratio {m / base:.3f} against no EMA; "
            f"the update alone {u:.2f} ms = {u / base:.2%} of a step without EMA"
        )


if __name__ == "__main__":
    main()
