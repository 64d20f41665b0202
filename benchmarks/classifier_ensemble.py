"""Dev accuracy of several classifiers alone and as an averaged ensemble.

The ensemble is `seqtool pseudo-label`'s teacher with -m given more than once: the class
probabilities of the models averaged. This prints, per labelled file, each model's accuracy
and the ensemble's, and how often the first two models disagree: whether a teacher
ensemble labels better than its best member.

    python benchmarks/classifier_ensemble.py --model A --model B [--model C] DEV.csv [DEV2.csv]
"""

from __future__ import annotations

import argparse


def _accuracy(pred: list[str], gold: list[str]) -> float:
    return sum(a == b for a, b in zip(pred, gold, strict=True)) / len(gold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", help="labelled CSV/TSV/JSONL files")
    ap.add_argument("--model", action="append", required=True, help="classifier checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from seqtool import api
    from seqtool.data.tabular import read_labelled
    from seqtool.recipes.pseudo_label import Ensemble

    torch.set_num_threads(args.threads)
    models = [api.load(m, "classifier", "benchmark") for m in args.model]
    ensemble = Ensemble(models)
    names = [f"model {i + 1}" for i in range(len(models))]
    print(
        f"{'data':<20}" + "".join(f" {n:>9}" for n in names) + f" {'ensemble':>9} {'disagree':>9}"
    )
    for path in args.data:
        table = read_labelled(path, models[0].text_column, models[0].label_column)
        texts = [t for chunk in table.iter_texts() for t in chunk]
        gold = table.labels
        preds = [[y for y, _, _ in m.predict(texts)] for m in models]
        ens = [y for y, _, _ in ensemble.predict(texts)]

        disagree = sum(a != b for a, b in zip(preds[0], preds[-1], strict=True)) / len(gold)
        name = path.rsplit("/", 1)[-1]
        print(
            f"{name:<20}"
            + "".join(f" {_accuracy(p, gold):>9.4f}" for p in preds)
            + f" {_accuracy(ens, gold):>9.4f} {disagree:>9.4f}"
        )
    for n, m in zip(names, args.model, strict=True):
        print(f"{n}: {m}")


if __name__ == "__main__":
    main()
