"""Translator throughput on 1 thread: training target tokens/s and translation sentences/s
(greedy and beam 5), each against a plain-PyTorch reference of the same architecture measured
in the same run.

The reference is the seq2seq as tutorials write it: packed bidirectional nn.LSTM encoder, an
nn.LSTM decoder called once per target position in a Python loop with Luong dot attention,
and greedy / beam search that call that decoder step by step (beam search one sentence at a
time, its K hypotheses as a batch). Same sizes, same vocabulary, same batches.

    python benchmarks/translate_throughput.py                       # Multi30k if ../shared exists
    python benchmarks/translate_throughput.py --data corpora/translation-sample.tsv --steps 5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "corpora" / "translation"


class PlainSeq2Seq(nn.Module):
    """The reference: same shapes as seqtool's translator (dot attention, tied output)."""

    def __init__(self, V: int, E: int, H: int, Hd: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=0)
        self.enc = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, Hd)
        self.dec = nn.LSTM(E, Hd, batch_first=True)
        self.key = nn.Linear(2 * H, Hd, bias=False)
        self.combine = nn.Linear(Hd + 2 * H, E)
        self.bias = nn.Parameter(torch.zeros(V))

    def encode(self, src, src_len):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.emb(src), src_len, batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.enc(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)  # (B, S, 2H)
        h0 = torch.tanh(self.bridge(torch.cat([h[-2], h[-1]], -1))).unsqueeze(0)  # (1, B, Hd)
        mask = torch.arange(out.size(1))[None] < src_len[:, None]
        return out, self.key(out), mask, (h0, torch.zeros_like(h0))

    def step(self, tok, state, out, keys, mask):
        h, state = self.dec(self.emb(tok).unsqueeze(1), state)  # (B, 1, Hd)
        scores = torch.bmm(h, keys.transpose(1, 2)).masked_fill(~mask[:, None], -1e9)
        ctx = torch.bmm(scores.softmax(-1), out)  # (B, 1, 2H)
        att = torch.tanh(self.combine(torch.cat([h, ctx], -1)))
        return F.linear(att.squeeze(1), self.emb.weight, self.bias), state

    def loss(self, b):
        out, keys, mask, state = self.encode(b["src"], b["src_len"])
        logits = []
        for t in range(b["tgt_in"].size(1)):
            lg, state = self.step(b["tgt_in"][:, t], state, out, keys, mask)
            logits.append(lg)
        logits = torch.stack(logits, 1)
        return F.cross_entropy(logits.flatten(0, 1), b["tgt_out"].flatten(), ignore_index=0)

    @torch.no_grad()
    def greedy(self, src, src_len, max_len):
        out, keys, mask, state = self.encode(src, src_len)
        tok = torch.full((src.size(0),), 2)
        done = torch.zeros(src.size(0), dtype=torch.bool)
        for _ in range(int(max_len.max())):
            lg, state = self.step(tok, state, out, keys, mask)
            tok = lg.argmax(-1)
            done |= tok == 3
            if done.all():
                break

    @torch.no_grad()
    def beam(self, src, K, max_len):
        out, keys, mask, state = self.encode(src[None], torch.tensor([len(src)]))
        out, keys, mask = out.expand(K, -1, -1), keys.expand(K, -1, -1), mask.expand(K, -1)
        state = tuple(s.expand(-1, K, -1).contiguous() for s in state)
        scores = torch.tensor([0.0] + [-1e9] * (K - 1))
        tok = torch.full((K,), 2)
        finished = 0
        for _ in range(max_len):
            lg, state = self.step(tok, state, out, keys, mask)
            cand = (scores[:, None] + lg.log_softmax(-1)).flatten()
            scores, idx = cand.topk(K)
            beam, tok = idx // lg.size(-1), idx % lg.size(-1)
            state = tuple(s[:, beam] for s in state)
            finished += int((tok == 3).sum())
            scores = scores.masked_fill(tok == 3, -1e9)
            if finished >= K:
                break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT / "train.tsv"))
    ap.add_argument("--dev", default=None, help="sentences to translate (default: --data)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sentences", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--vocab-size", type=int, default=6000)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--model", default=str(ROOT / "checkpoints" / "translate-en-de.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    from seqtool import checkpoint
    from seqtool.data import pairs
    from seqtool.data.batching import BucketedSource, pad
    from seqtool.data.parallel import read_pairs
    from seqtool.tasks.base import Setup
    from seqtool.tasks.translator import Translator

    if not Path(args.data).is_file():
        args.data = str(ROOT / "corpora" / "translation-sample.tsv")
    src_text, tgt_text = read_pairs(args.data)
    if Path(args.model).is_file():  # realistic decode lengths need a trained model
        model = Translator.load(checkpoint.read_header(args.model))
    else:
        from seqtool.config import TrainConfig

        bb = dict(cell="lstm", layers=1, hidden_size=256, embedding_dim=256, bidirectional=True)
        cfg = TrainConfig(batch_size=args.batch_size, threads=1)
        opts = pairs.TranslatorOptions(files=[args.data], vocab_size=args.vocab_size)
        model = Translator.prepare(Setup(opts, {"decoder_hidden": 256}, bb, cfg))[0]
    c = model.config
    if c.attention != "dot" or c.input_feeding or c.encoder.cell != "lstm" or not c.shared_vocab:
        raise SystemExit("the reference mirrors a dot-attention LSTM with a joint vocabulary")
    s_ids, t_ids = pairs.encode_pairs(model.tokenizer, model.target_tokenizer, src_text, tgt_text)
    lengths = [max(len(a), len(b) + 1) for a, b in zip(s_ids, t_ids, strict=True)]
    source = BucketedSource(lengths, pairs.PairCollate(s_ids, t_ids), args.batch_size, seed=0)
    E, H = c.encoder.embedding_dim, c.encoder.hidden_size
    plain = PlainSeq2Seq(c.encoder.vocab_size, E, H, model.decoder.rnn.hidden_size)
    # Same weights, so both decode the same hypotheses and do the same work.
    sd = model.state_dict()
    mapped = {
        "emb.weight": sd["encoder.embedding.embed.weight"],
        "bias": sd["decoder.out_bias"],
        "key.weight": sd["decoder.attention.key_proj.weight"],
    }
    for ours, theirs in (
        ("encoder.rnn.rnn", "enc"),
        ("decoder.rnn.rnn", "dec"),
        ("decoder.bridge", "bridge"),
        ("decoder.combine", "combine"),
    ):
        mapped |= {theirs + k[len(ours) :]: v for k, v in sd.items() if k.startswith(ours + ".")}
    plain.load_state_dict(mapped)
    batches = [source.next_batch() for _ in range(args.steps + 2)]
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if args.precision == "bf16"
        else torch.autocast("cpu", enabled=False)
    )

    def train_speed(loss_fn, module) -> float:
        opt = torch.optim.AdamW(module.parameters(), 1e-3)
        ntok, t0 = 0, 0.0
        for i, b in enumerate(batches):
            if i == 2:  # two warm-up steps
                ntok, t0 = 0, time.perf_counter()
            with autocast:
                loss = loss_fn(b)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ntok += int((b["tgt_out"] != 0).sum())
        return ntok / (time.perf_counter() - t0)

    res: dict[str, float] = {}
    model.train()
    res["train_tok_s"] = train_speed(lambda b: model.forward_loss(b)[0], model)
    plain.train()
    res["train_tok_s_plain"] = train_speed(plain.loss, plain)

    if args.dev:
        src_text = read_pairs(args.dev)[0]
    src_text = src_text[: args.sentences]
    model.eval()
    plain.eval()
    for beam in (1, 5):
        t0 = time.perf_counter()
        model.translate(src_text, beam=beam, batch_size=32)
        res[f"beam{beam}_sent_s"] = len(src_text) / (time.perf_counter() - t0)
        ids = [model.encode_source(s) for s in src_text]
        t0 = time.perf_counter()
        if beam == 1:
            for s in range(0, len(ids), 32):
                x, lengths = pad(ids[s : s + 32])
                plain.greedy(x, lengths, model.max_lengths(lengths))
        else:
            for one in ids:
                plain.beam(torch.tensor(one), beam, 2 * len(one) + 10)
        res[f"beam{beam}_sent_s_plain"] = len(src_text) / (time.perf_counter() - t0)
    for k in ("train_tok_s", "beam1_sent_s", "beam5_sent_s"):
        res[f"{k}_ratio"] = res[k] / res[f"{k}_plain"]
    out = {k: round(v, 2) for k, v in res.items()}
    print(json.dumps({"threads": 1, "precision": args.precision, "model": args.model, **out}))


if __name__ == "__main__":
    main()
