"""Tagging throughput on UD English EWT dev, 1 thread, against a plain-PyTorch reference.

seqtool: `Tagger.tag_stream` as `seqtool tag` runs it (chunks of sentences, length-sorted batches,
each distinct word form read by the char encoder once per batch) plus output formatting.
Reference, measured in the same run on the same weights: the straightforward plain-PyTorch
loop (sentences in file order, batches of 64, padded and packed, the char LSTM run over every
token). Both must produce the same tags; the script checks that.

    python benchmarks/tag_throughput.py [--model M] [--data dev.conllu] [--repeats 3]

Also measured: seqtool under bf16 autocast (`seqtool tag --precision bf16`), with its
agreement with the fp32 tags. Target: >= 5,000 tokens/s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqtool import api, paths
from seqtool.data.conllu import read_conllu_file
from seqtool.data.tagging import UNK, clip_word, normalize

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "corpora" / "pos" / "en_ewt-ud-dev.conllu"


def seqtool_tag(model, sentences) -> tuple[list[list[str]], int]:
    tags, chars = [], 0
    for chunk in model.tag_stream(sentences):
        out = "".join(
            " ".join(f"{w}/{t}" for w, t in zip(s.words, ts, strict=True)) + "\n" for s, ts in chunk
        )
        chars += len(out)
        tags += [ts for _, ts in chunk]
    return tags, chars


@torch.inference_mode()
def reference_tag(model, sentences, batch_size: int = 64) -> list[list[str]]:
    """Plain PyTorch over the same modules' weights: no dedup, no length sorting."""
    word_emb = model.backbone.embedding.embed
    char_emb = model.backbone.chars.embed.embed
    char_lstm = model.backbone.chars.rnn.rnn  # nn.LSTM, bidirectional
    lstm = model.backbone.rnn.rnn  # nn.LSTM, bidirectional
    head = model.head
    tok = model.tokenizer
    widx = model.word_index
    out = []
    for b in range(0, len(sentences), batch_size):
        batch = [s.words for s in sentences[b : b + batch_size]]
        lengths = torch.tensor([len(s) for s in batch])
        T = int(lengths.max())
        ids = torch.zeros(len(batch), T, dtype=torch.long)
        for i, s in enumerate(batch):
            ids[i, : len(s)] = torch.tensor([widx.get(normalize(w), UNK) for w in s])
        flat = [clip_word(w) for s in batch for w in s]  # every token, duplicates included
        clen = torch.tensor([len(w) for w in flat])
        cids = torch.zeros(len(flat), int(clen.max()), dtype=torch.long)
        for i, w in enumerate(flat):
            cids[i, : len(w)] = torch.tensor(tok.encode(w))
        packed = pack_padded_sequence(char_emb(cids), clen, batch_first=True, enforce_sorted=False)
        _, (h, _) = char_lstm(packed)
        cvec = torch.cat([h[0], h[1]], -1)  # (N, 2C)
        cfeat = torch.zeros(len(batch), T, cvec.size(1))
        k = 0
        for i, s in enumerate(batch):
            cfeat[i, : len(s)] = cvec[k : k + len(s)]
            k += len(s)
        x = torch.cat([word_emb(ids), cfeat], -1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        hs, _ = lstm(packed)
        hs, _ = pad_packed_sequence(hs, batch_first=True, total_length=T)
        pred = head(hs).argmax(-1)
        out += [[model.tags[t] for t in pred[i, : len(s)].tolist()] for i, s in enumerate(batch)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default=None, help="tagger checkpoint (default: shipped pos-en)")
    ap.add_argument("--data", default=str(DEV), help="CoNLL-U file to tag")
    ap.add_argument("--repeats", type=int, default=3, help="best of N runs each")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = api.load(args.model or paths.default_model("tagger"), "tagger", "benchmark")
    sentences = list(read_conllu_file(args.data, model.config.tag_field))
    ntok = sum(len(s.words) for s in sentences)
    seqtool_tag(model, sentences[:50])  # warm up
    reference_tag(model, sentences[:50])
    best_s = best_r = best_b = float("inf")
    for _ in range(args.repeats):  # interleaved, so machine load hits all three alike
        t = time.perf_counter()
        ours, _ = seqtool_tag(model, sentences)
        best_s = min(best_s, time.perf_counter() - t)
        t = time.perf_counter()
        ref = reference_tag(model, sentences)
        best_r = min(best_r, time.perf_counter() - t)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # = seqtool tag --precision bf16
            half, _ = seqtool_tag(model, sentences)
        best_b = min(best_b, time.perf_counter() - t)

    def agree(a, b):
        return sum(x == y for s, r in zip(a, b, strict=True) for x, y in zip(s, r, strict=True))

    print(f"data: {args.data}: {len(sentences)} sentences, {ntok} tokens; 1 thread")
    print(
        f"tags identical to reference: {agree(ours, ref)}/{ntok}; bf16 vs fp32: "
        f"{agree(half, ours)}/{ntok}"
    )
    print(
        f"seqtool        {ntok / best_s:8,.0f} tokens/s  ({best_s:.2f} s, best of {args.repeats})"
    )
    print(f"reference      {ntok / best_r:8,.0f} tokens/s  ({best_r:.2f} s, plain PyTorch fp32)")
    print(f"ratio          {best_r / best_s:8.2f}x  (target: >= 5,000 tokens/s)")
    print(f"seqtool bf16   {ntok / best_b:8,.0f} tokens/s  ({best_b:.2f} s, --precision bf16)")


if __name__ == "__main__":
    main()
