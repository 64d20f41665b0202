"""Char-LM throughput: seqtool's trainer against a bare fused nn.LSTM loop, bf16 against
fp32, and batch-1 generation against calling nn.LSTM one step at a time.

Everything runs in this one process on the same data, so the printed ratios compare like
with like. Usage:

    python benchmarks/lm_throughput.py                 # 1 thread, 2x512 (the shipped size)
    python benchmarks/lm_throughput.py --threads 2 --hidden 256 --steps 40
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from seqtool.config import BackboneConfig, TrainConfig
from seqtool.data.lm import WindowSampler
from seqtool.tasks.lm import LanguageModel, LMConfig
from seqtool.tokenizers import CharTokenizer
from seqtool.training import Trainer

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "lm" / "train.txt"
if not CORPUS.is_file():
    CORPUS = ROOT / "corpora" / "play-sample.txt"


def seqtool_train(ids, tok, args, precision: str) -> float:
    """Tokens/s of the seqtool trainer (whole fit(), callbacks and all)."""
    torch.manual_seed(0)
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=args.batch,
        seq_len=args.seq_len,
        lr=3e-3,
        warmup=10,
        precision=precision,
        log_every=10,
        device="cpu",
    )
    model = LanguageModel(LMConfig(backbone=_bb(tok, args)), tok)
    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(
            model,
            WindowSampler(ids, args.batch, args.seq_len),
            None,
            cfg,
            Path(d) / "m.safetensors",
        )
        tr.callbacks = [cb for cb in tr.callbacks if type(cb).__name__ != "Progress"]
        t0 = time.perf_counter()
        tr.fit()
        dt = time.perf_counter() - t0
    return args.steps * args.batch * args.seq_len / dt


def bare_train(ids, vocab, args, precision: str) -> float:
    """Tokens/s of the plain PyTorch loop: Embedding -> nn.LSTM -> Linear, AdamW, clip."""
    torch.manual_seed(0)
    emb = nn.Embedding(vocab, args.embedding)
    lstm = nn.LSTM(args.embedding, args.hidden, args.layers, batch_first=True, dropout=0.25)
    head = nn.Linear(args.hidden, vocab)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    g = torch.Generator().manual_seed(0)
    offs = torch.arange(args.seq_len + 1)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        starts = torch.randint(0, ids.numel() - args.seq_len, (args.batch,), generator=g)
        win = ids[starts[:, None] + offs].long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out, _ = lstm(emb(win[:, :-1]))
            logits = head(out)
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), win[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return args.steps * args.batch * args.seq_len / (time.perf_counter() - t0)


def _bb(tok, args) -> BackboneConfig:
    return BackboneConfig(
        vocab_size=tok.vocab_size,
        embedding_dim=args.embedding,
        hidden_size=args.hidden,
        layers=args.layers,
        cell="lstm",
        dropout=0.25,
    )


def generation(model: LanguageModel, n: int) -> tuple[float, float]:
    """chars/s of seqtool generate vs a loop calling the fused nn.LSTM once per character."""
    g = torch.Generator().manual_seed(0)
    list(model.generate("ROMEO:", 50, 0.8, 20, 1.0, g))  # warm up
    t0 = time.perf_counter()
    got = sum(len(p) for p in model.generate("ROMEO:", n, 0.8, 20, 1.0, g))
    ours = got / (time.perf_counter() - t0)
    bb, head = model.backbone, model.head
    with torch.inference_mode():
        x = torch.tensor([[5]])
        state = None
        t0 = time.perf_counter()
        for _ in range(n):
            out, state = bb.rnn.rnn(bb.embedding(x), state)
            logits = head(out[:, -1])
            x = torch.multinomial((logits / 0.8).softmax(-1), 1, generator=g)
        ref = n / (time.perf_counter() - t0)
    return ours, ref


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
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument(
        "--repeats", type=int, default=2, help="alternating runs; the best of each counts"
    )
    ap.add_argument("--gen-chars", type=int, default=2000)
    ap.add_argument("--model", help="also time generation of this LM checkpoint")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    text = CORPUS.read_text()
    tok = CharTokenizer.train([text])
    ids = torch.tensor(tok.encode(text), dtype=torch.int32)
    print(
        f"corpus {CORPUS.name}, {args.layers}x{args.hidden} LSTM, batch {args.batch}x{args.seq_len}, "
        f"{args.steps} steps, {args.threads} thread(s)"
    )

    for prec in ("fp32", "bf16"):
        ours, bare = 0.0, 0.0
        for _ in range(args.repeats):  # alternate so drift on a shared machine hits both
            bare = max(bare, bare_train(ids, tok.vocab_size, args, prec))
            ours = max(ours, seqtool_train(ids, tok, args, prec))
        print(
            f"train {prec}: seqtool {ours:,.0f} tok/s, bare nn.LSTM loop {bare:,.0f} tok/s, "
            f"ratio {ours / bare:.3f}"
        )
        if prec == "fp32":
            fp32 = ours
    print(f"train bf16/fp32 (seqtool): {ours / fp32:.2f}x")

    for hidden in (256, 512):
        a = argparse.Namespace(**{**vars(args), "hidden": hidden, "layers": 2})
        m = LanguageModel(LMConfig(backbone=_bb(tok, a)), tok).eval()
        ours, ref = generation(m, args.gen_chars)
        print(
            f"generate 2x{hidden} batch 1: seqtool {ours:,.0f} chars/s, nn.LSTM per step {ref:,.0f} "
            f"chars/s, ratio {ours / ref:.1f}"
        )
    if args.model:
        from seqtool import api

        m = api.load(args.model, "lm")
        ours, ref = generation(m, args.gen_chars)
        print(
            f"generate {args.model}: seqtool {ours:,.0f} chars/s, nn.LSTM per step {ref:,.0f} chars/s, "
            f"ratio {ours / ref:.1f}"
        )


if __name__ == "__main__":
    main()
