"""Classify throughput on SST-2 dev sentences, 1 thread, against a plain-PyTorch reference.

Both sides tokenize the raw sentences with the model's tokenizer and run the same weights;
the reference is the textbook loop (nn.Embedding -> packed nn.LSTM -> pool -> nn.Linear
over length-sorted batches; for a model trained with --ngrams, plus an nn.EmbeddingBag over
n-gram ids hashed per sentence in Python, as a fastText tutorial would). Prints sentences/s for each and their ratio, and checks that
both give the same labels; then the same for `seqtool classify --precision bf16` (autocast).

    python benchmarks/classify_throughput.py [--model M] [--data sst2_dev.csv] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "corpora" / "sentiment" / "sst2_dev.csv"


class Reference(nn.Module):
    """A plain PyTorch BiLSTM classifier, written as a tutorial would."""

    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, bidir: bool, classes: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = nn.LSTM(emb, hidden, layers, batch_first=True, bidirectional=bidir)
        self.fc = nn.Linear(hidden * (2 if bidir else 1), classes)

    def add_bag(self, rows: int, dim: int, classes: int) -> None:
        self.bag = nn.EmbeddingBag(rows, dim, mode="mean")
        self.bag_fc = nn.Linear(dim, classes)

    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        pool: str,
        bag: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embed(ids), lengths, batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.rnn(packed)
        if pool == "last":
            d = 2 if self.rnn.bidirectional else 1
            pooled = torch.cat(list(h[-d:]), dim=-1)  # (B, D*H)
        else:
            out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T, D*H)
            mask = torch.arange(out.size(1))[None, :] < lengths[:, None]
            if pool == "max":
                pooled = out.masked_fill(~mask[:, :, None], float("-inf")).amax(1)
            else:
                pooled = (out * mask[:, :, None]).sum(1) / lengths[:, None]
        logits = self.fc(pooled)
        if bag is None:
            return logits
        flat, offsets = bag
        bag_logits = self.bag_fc(self.bag(flat, offsets))
        return (logits.log_softmax(-1) + bag_logits.log_softmax(-1)) / 2


def hashed_ngrams(ids: list[int], n: int, vocab: int, buckets: int) -> list[int]:
    """Token ids, then each k-gram (k = 2..n) hashed to a row after the vocabulary."""
    out = list(ids)
    h = list(ids)
    for k in range(2, n + 1):
        h = [(h[i] * vocab + ids[i + k - 1]) % 2_147_483_647 for i in range(len(ids) - k + 1)]
        out += [(x * 1_000_003 + k) % buckets + vocab for x in h]
    return out


def reference_from(model) -> Reference:
    bb = model.config.backbone
    if bb.cell != "lstm":
        raise SystemExit("the reference is an LSTM; benchmark an LSTM classifier")
    ref = Reference(
        bb.vocab_size,
        bb.embedding_dim,
        bb.hidden_size,
        bb.layers,
        bb.bidirectional,
        model.config.num_labels,
    )
    ref.embed.weight.data.copy_(model.backbone.embedding.weight)
    ref.rnn.load_state_dict(model.backbone.rnn.rnn.state_dict())
    ref.fc.load_state_dict(model.head.state_dict())
    if model.config.ngrams:
        rows, dim = model.ngram_embed.weight.shape
        ref.add_bag(rows, dim, model.config.num_labels)
        ref.bag.weight.data.copy_(model.ngram_embed.weight)
        ref.bag_fc.load_state_dict(model.ngram_head.state_dict())
    return ref.eval()


@torch.inference_mode()
def run_reference(ref: Reference, model, texts: list[str], batch_size: int) -> list[int]:
    tok, cfg = model.tokenizer, model.config
    texts = [t.lower() for t in texts] if cfg.lowercase else texts
    full = tok.encode(texts)
    ids = [x[: cfg.max_length] if cfg.max_length else x for x in full]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    preds = [0] * len(ids)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        lengths = torch.tensor([max(1, len(ids[i])) for i in idx])
        x = torch.zeros(len(idx), int(lengths.max()), dtype=torch.long)
        for r, i in enumerate(idx):
            x[r, : len(ids[i])] = torch.tensor(ids[i])
        bag = None
        if cfg.ngrams:
            feats = [
                hashed_ngrams(full[i] or [tok.eos_id], cfg.ngrams, cfg.backbone.vocab_size,
                              cfg.ngram_buckets)
                for i in idx
            ]  # fmt: skip
            offsets = torch.tensor([0] + [len(f) for f in feats[:-1]]).cumsum(0)
            bag = (torch.tensor([t for f in feats for t in f]), offsets)
        logits = ref(x, lengths, cfg.pool, bag)
        for r, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
            preds[r] = p
    return preds


def best_of(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time of `repeat` runs. On a shared machine the CPU time
    (this process only) is the steadier number; the wall time is what a user waits."""
    fn()  # warm-up
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="classifier checkpoint (default: shipped)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from seqtool import api, paths

    model = api.load(args.model or paths.default_model("classifier"), "classifier", "benchmark")
    with open(args.data, newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    ref = reference_from(model)

    ours_labels = [model.labels.index(p[0]) for p in model.predict(texts, args.batch_size)]
    ref_labels = run_reference(ref, model, texts, args.batch_size)
    agree = sum(a == b for a, b in zip(ours_labels, ref_labels, strict=True)) / len(texts)

    (w_ours, c_ours) = best_of(lambda: model.predict(texts, args.batch_size), args.repeat)
    (w_ref, c_ref) = best_of(lambda: run_reference(ref, model, texts, args.batch_size), args.repeat)

    def bf16() -> list:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model.predict(texts, args.batch_size)

    bf16_labels = [model.labels.index(p[0]) for p in bf16()]
    bf16_same = sum(a == b for a, b in zip(ours_labels, bf16_labels, strict=True)) / len(texts)
    (w_bf, c_bf) = best_of(bf16, args.repeat)
    n = len(texts)
    print(
        f"data {args.data}: {n} sentences, 1 thread, batch {args.batch_size}, best of {args.repeat}"
    )
    print("                            sentences/s (wall)   sentences/CPU-s")
    print(f"seqtool classify (predict): {n / w_ours:>18,.0f}   {n / c_ours:>15,.0f}")
    print(f"plain PyTorch reference:    {n / w_ref:>18,.0f}   {n / c_ref:>15,.0f}")
    print(
        f"ratio seqtool / reference:  {w_ref / w_ours:>17.2f}x   {c_ref / c_ours:>14.2f}x"
        f"   (label agreement {agree:.4f})"
    )
    print(
        f"seqtool --precision bf16:   {n / w_bf:>18,.0f}   {n / c_bf:>15,.0f}"
        f"   ({w_ours / w_bf:.2f}x fp32 wall; labels equal to fp32: {bf16_same:.4f})"
    )


if __name__ == "__main__":
    main()
