"""How well each calibration method holds on texts it was not fitted on: K-fold
cross-validation over the pooled dev sets of a classifier (logits computed once), with ECE,
NLL and Brier per dev set for no calibration, one temperature, and the length-dependent
temperature that `seqtool train classifier` fits by default.

    python benchmarks/calibration_cv.py checkpoints/sentiment.safetensors \
        ../shared/corpora/sentiment/sst2_dev.csv ../shared/corpora/sentiment/imdb_dev.csv

Each text's probabilities come from a fit on the other folds (stratified by set), so the
numbers are what a held-out test set would see, not the in-sample figures `seqtool
calibrate` prints.
"""

from __future__ import annotations

import argparse

import torch

from seqtool import api
from seqtool.data.labelled import set_names
from seqtool.metrics import calibration_metrics
from seqtool.recipes.calibration import Calibration, dev_logits, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("dev", nargs="+")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = api.load(args.model, "classifier")
    parts = [dev_logits(model, model.eval_data(p)) for p in args.dev]
    logits, lengths, gold = (torch.cat(list(x)) for x in zip(*parts, strict=True))
    owner = torch.cat([torch.full((len(p[2]),), i) for i, p in enumerate(parts)])
    fold = torch.empty_like(owner)
    g = torch.Generator().manual_seed(0)
    for i in range(len(parts)):  # folds stratified by set
        idx = (owner == i).nonzero().squeeze(1)
        fold[idx[torch.randperm(len(idx), generator=g)]] = torch.arange(len(idx)) % args.folds
    names = set_names(args.dev)
    print(f"{args.model}, {args.folds}-fold cross-validated over {len(gold):,} dev texts")
    print(f"{'method':<12} {'set':<12} {'accuracy':>8} {'ECE':>7} {'NLL':>7} {'Brier':>7}")
    for method in ("none", "temperature", "length"):
        probs = torch.empty_like(logits)
        for k in range(args.folds):
            test = fold == k
            cal = Calibration()
            if method != "none":
                cal, _ = fit(logits[~test], lengths[~test], gold[~test], method)
            probs[test] = cal.apply(logits[test], lengths[test])
        for i, name in enumerate(names):
            sel = owner == i
            m = calibration_metrics(probs[sel].tolist(), gold[sel].tolist())
            acc = float((probs[sel].argmax(-1) == gold[sel]).float().mean())
            print(f"{method:<12} {name:<12} {acc:8.4f} {m['ece']:7.4f} {m['nll']:7.4f} "
                  f"{m['brier']:7.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
