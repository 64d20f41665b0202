"""Dev accuracy of a `--ngrams` classifier's two branches alone and together.

A model trained with `--ngrams` predicts with the geometric mean of its recurrent backbone's
and its n-gram bag's probabilities. This prints, per labelled file, the accuracy of the
backbone alone, of the bag alone and of the two together (what `seqtool classify` and
`seqtool eval` use), how often the two branches disagree, and the expected calibration error
(10 bins) of the scores from the geometric mean against those of the plain product of the
two branches' probabilities.

    python benchmarks/classifier_branches.py [--model M] DEV.csv [DEV2.csv ...]
"""

from __future__ import annotations

import argparse

import torch


@torch.inference_mode()
def branch_accuracy(model, path: str, batch_size: int = 128) -> dict[str, float]:
    from seqtool.data.batching import eval_batches, pad
    from seqtool.data.labelled import encode_labelled
    from seqtool.data.tabular import read_labelled

    model.eval()
    data = encode_labelled(
        model, read_labelled(path, model.text_column, model.label_column), unknown_ok=True
    )
    gold = torch.as_tensor([int(y) for y in data.labels])
    preds = {k: torch.empty(len(gold), dtype=torch.long) for k in ("backbone", "bag", "both")}
    probs = {k: torch.empty(len(gold), model.config.num_labels) for k in ("product", "both")}
    for idx in eval_batches(data.lengths, batch_size, batch_size * 320):
        ids, lens = pad([data.ids[i] for i in idx], model.tokenizer.pad_id)
        main, bag = model.branches(ids, lens)  # (B, C) each
        preds["backbone"][idx] = main.argmax(-1)
        preds["bag"][idx] = bag.argmax(-1)
        both = model(ids, lens)  # (B, C)
        preds["both"][idx] = both.argmax(-1)
        probs["both"][idx] = both.softmax(-1)
        probs["product"][idx] = (
            main.float().log_softmax(-1) + bag.float().log_softmax(-1)
        ).softmax(-1)
    out = {k: float((p == gold).float().mean()) for k, p in preds.items()}
    for k, p in probs.items():
        out[f"ece_{k}"] = expected_calibration_error(p, gold)
    out["disagree"] = float((preds["backbone"] != preds["bag"]).float().mean())
    return out


def expected_calibration_error(probs: torch.Tensor, gold: torch.Tensor, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over confidence bins, weighted by bin size."""
    conf, pred = probs.max(-1)
    which = (conf * bins).long().clamp(max=bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            gap = (pred[sel] == gold[sel]).float().mean() - conf[sel].mean()
            ece += float(sel.float().mean() * gap.abs())
    return ece


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", help="labelled CSV/TSV/JSONL files")
    ap.add_argument("--model", default=None, help="classifier checkpoint (default: shipped)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from seqtool import api, paths

    model = api.load(args.model or paths.default_model("classifier"), "classifier", "benchmark")
    if not model.config.ngrams:
        raise SystemExit("this model has no n-gram bag (train it with --ngrams)")
    print(
        f"{'data':<20} {'backbone':>9} {'bag':>7} {'both':>7} {'disagree':>9}"
        f" {'ECE both':>9} {'ECE product':>12}"
    )
    for path in args.data:
        r = branch_accuracy(model, path)
        name = path.rsplit("/", 1)[-1]
        print(
            f"{name:<20} {r['backbone']:>9.4f} {r['bag']:>7.4f} {r['both']:>7.4f}"
            f" {r['disagree']:>9.4f} {r['ece_both']:>9.4f} {r['ece_product']:>12.4f}"
        )


if __name__ == "__main__":
    main()
