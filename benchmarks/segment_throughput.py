"""Segmenter throughput on UD English EWT dev (raw text), 1 thread, against a plain-PyTorch
reference, and what it adds to `seqtool tag`.

seqtool: `Segmenter.segment` as `seqtool tag` and `seqtool tokenize` run it (windows of at most
512 characters sorted by length, 16k characters per forward pass, no packing; then the labels
decoded into tokens, words and sentences). Reference, measured in the same run on the same
weights: nn.Embedding + nn.LSTM/GRU/RNN + nn.Linear, lines in file order, batches of 64 padded
on the right (labels only, no decoding). The two must agree; the script counts differences.

Then the tag time of the same text with and without the segmenter: the tagger on the
whitespace-split lines (`--pretokenized`) against segmenter + tagger (the default), in process,
and the same two `seqtool tag` commands end to end (start-up and model loading included).

    python benchmarks/segment_throughput.py [--model M] [--data dev.conllu] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seqtool import api, paths
from seqtool.data import segmenting as seg

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "corpora" / "pos" / "en_ewt-ud-dev.conllu"


@torch.inference_mode()
def reference_labels(model, texts: list[str], batch_size: int = 64) -> list[np.ndarray]:
    """Plain PyTorch over the segmenter's weights: file order, right padding, whole lines."""
    embed = model.backbone.embedding.embed  # nn.Embedding
    rnn = model.backbone.rnn.rnn  # nn.LSTM / nn.GRU / nn.RNN, bidirectional
    head = model.head  # nn.Linear
    out = []
    for b in range(0, len(texts), batch_size):
        batch = texts[b : b + batch_size]
        ids = torch.zeros(len(batch), max(1, max(map(len, batch))), dtype=torch.long)
        for i, t in enumerate(batch):
            ids[i, : len(t)] = torch.from_numpy(model.encode(t))  # the same char ids
        pred = head(rnn(embed(ids))[0]).argmax(-1)  # (B, T)
        out += [pred[i, : len(t)].numpy().astype(np.int8) for i, t in enumerate(batch)]
    return out


def best_of(n: int, fn) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cli_seconds(args: list[str], path: str, repeats: int) -> float:
    cmd = [sys.executable, "-m", "seqtool", "tag", "--threads", "1", *args, path]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run() -> None:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)

    return best_of(repeats, run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None, help="segmenter (default: shipped segment-en)")
    ap.add_argument("--data", default=str(DEV), help="CoNLL-U file whose text to segment")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = api.load(args.model or paths.default_model("segmenter"), "segmenter", "benchmark")
    tagger = api.load(paths.default_model("tagger"), "tagger", "benchmark")
    paragraphs = list(seg.read_paragraphs(Path(args.data).read_text().splitlines(), args.data))
    lines = [s for p in paragraphs for s in seg.sentence_texts(p)]  # raw sentences
    nchar = sum(map(len, lines))
    model.segment(lines[:50])  # warm up
    reference_labels(model, lines[:50])
    tagger.predict([t.split() for t in lines[:50]])

    ours = model.label(lines)
    ref = reference_labels(model, lines)
    same = sum(int((a == b).sum()) for a, b in zip(ours, ref, strict=True))
    words = [s.words for g in model.sentences(lines, split=False) for s in g]
    spaces = [t.split() for t in lines]
    t_seg = t_ref = t_tag = t_ws = t_raw = float("inf")
    for _ in range(args.repeats):  # interleaved, so machine load hits all alike
        t_seg = min(t_seg, best_of(1, lambda: model.segment(lines, split=False)))
        t_ref = min(t_ref, best_of(1, lambda: reference_labels(model, lines)))
        t_tag = min(t_tag, best_of(1, lambda: tagger.predict(words)))
        t_ws = min(t_ws, best_of(1, lambda: tagger.predict(spaces)))
        t_raw = min(t_raw, best_of(1, lambda: model.segment([p.text for p in paragraphs])))
    cfg = model.config.backbone
    print(f"data: {args.data}: {len(lines)} sentences, {nchar} characters; 1 thread")
    print(f"model: bidirectional {cfg.cell} {cfg.layers} x {cfg.hidden_size}, embedding "
          f"{cfg.embedding_dim}, {sum(p.numel() for p in model.parameters()):,} parameters")  # fmt: skip
    print(f"labels identical to reference: {same}/{nchar}")
    print(f"seqtool     {nchar / t_seg:10,.0f} chars/s  ({t_seg:.2f} s: labels + tokens, words)")
    print(f"reference   {nchar / t_ref:10,.0f} chars/s  ({t_ref:.2f} s: labels only)")
    print(f"ratio       {t_ref / t_seg:10.2f}x")
    print(f"paragraphs  {nchar / t_raw:10,.0f} chars/s  ({t_raw:.2f} s: --input-format raw)")
    print(f"tagger      {sum(map(len, words)) / t_tag:10,.0f} tokens/s  ({t_tag:.2f} s; "
          f"{t_ws:.2f} s on the whitespace-split lines)")  # fmt: skip
    print(f"segmenter / tagger time: {t_seg / t_tag:.0%} (target <= 30%)")
    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "dev.txt")
        Path(path).write_text("".join(t + "\n" for t in lines))
        cli_ws = cli_seconds(["--pretokenized"], path, args.repeats)
        cli_seg = cli_seconds([], path, args.repeats)
    print(f"seqtool tag --pretokenized {cli_ws:.2f} s, seqtool tag (segmenter) {cli_seg:.2f} s: "
          f"+{cli_seg / cli_ws - 1:.0%} end to end, start-up included")  # fmt: skip


if __name__ == "__main__":
    main()
