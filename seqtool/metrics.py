"""Every metric seqtool reports, in one place: accuracy, per-label precision / recall / F1 and
the confusion matrix (classifier, tagger), calibration (ECE, NLL, Brier), nats / bits per character and perplexity (LM), and
BLEU / chrF through sacreBLEU (translator). Plus the tables `seqtool eval` shows for them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def prf(tp: int, predicted: int, support: int) -> dict[str, float]:
    """Precision, recall and F1 of one label from its counts (0 where undefined)."""
    prec = tp / predicted if predicted else 0.0
    rec = tp / support if support else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "support": support}


def per_label(
    tp: Mapping[str, int], predicted: Mapping[str, int], gold: Mapping[str, int]
) -> dict[str, dict[str, float]]:
    """prf() for every label seen in the gold data or the predictions, sorted by name."""
    return {
        t: prf(tp.get(t, 0), predicted.get(t, 0), gold.get(t, 0))
        for t in sorted(set(gold) | set(predicted))
    }


def classification_metrics(gold: list[int], pred: list[int], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class P/R/F1 and the confusion matrix. Gold ids of -1 (labels
    the model does not know) count as errors."""
    C = len(labels)
    cm = [[0] * C for _ in range(C)]  # rows: gold, columns: predicted
    for g, p in zip(gold, pred, strict=True):
        if g >= 0:
            cm[g][p] += 1
    n = len(gold)
    correct = sum(cm[i][i] for i in range(C))
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, name in enumerate(labels):
        support = sum(cm[i])
        per_class[name] = prf(cm[i][i], sum(cm[r][i] for r in range(C)), support)
        if support:  # classes absent from the gold data do not drag macro-F1 to zero
            f1s.append(per_class[name]["f1"])
    return {
        "accuracy": correct / n if n else 0.0,
        "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
        "examples": n,
        **({"unknown_gold_labels": n - sum(map(sum, cm))} if n > sum(map(sum, cm)) else {}),
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": cm},
    }


def calibration_metrics(
    probs: Sequence[Sequence[float]], gold: Sequence[int], bins: int = 10
) -> dict[str, float]:
    """How far the probabilities can be trusted: expected calibration error (ECE: |accuracy
    - mean confidence| of the top label in `bins` equal-width confidence bins, weighted by
    their counts; Guo et al. 2017), negative log-likelihood of the gold label (nats), and the
    Brier score (squared error of the probability vector, summed over classes: Brier 1950;
    twice sklearn's binary `brier_score_loss`). Gold ids of -1 are left out."""
    rows = [(p, g) for p, g in zip(probs, gold, strict=True) if g >= 0]
    if not rows:
        return {"ece": 0.0, "nll": 0.0, "brier": 0.0}
    nll = brier = 0.0
    for p, g in rows:
        nll -= math.log(max(p[g], 1e-12))
        brier += sum((q - (i == g)) ** 2 for i, q in enumerate(p))
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in reliability(rows, bins))
    n = len(rows)
    return {"ece": ece / n, "nll": nll / n, "brier": brier / n}


def reliability(
    rows: Sequence[tuple[Sequence[float], int]], bins: int = 10
) -> list[dict[str, float]]:
    """The reliability diagram's bins over (probabilities, gold id) rows: for each non-empty
    confidence bin [lo, hi), its count, mean top-label confidence and accuracy."""
    acc: list[list[float]] = [[0, 0.0, 0.0] for _ in range(bins)]
    for p, g in rows:
        top = max(range(len(p)), key=p.__getitem__)
        b = min(int(p[top] * bins), bins - 1)
        acc[b][0] += 1
        acc[b][1] += p[top]
        acc[b][2] += top == g
    return [
        {
            "lo": i / bins,
            "hi": (i + 1) / bins,
            "count": int(n),
            "confidence": c / n,
            "accuracy": a / n,
        }  # fmt: skip
        for i, (n, c, a) in enumerate(acc)
        if n
    ]


def labelled_sets_metrics(
    labels: list[str], names: Sequence[str], probs: Sequence[Any], gold: Sequence[list[int]]
) -> dict[str, Any]:
    """A classifier's metrics over one or more named sets (class probabilities (N, C) and
    gold ids per set): accuracy, macro-F1, ECE/NLL/Brier, the tables and the reliability
    bins over their union; with several sets also each one's accuracy and their mean
    (`accuracy_mean`: each set counts the same, however many rows it has)."""
    rows = [p.tolist() for p in probs]
    pred = [[max(range(len(r)), key=r.__getitem__) for r in p] for p in rows]
    flat = [r for p in rows for r in p]
    flat_gold = [g for gs in gold for g in gs]
    metrics = classification_metrics(flat_gold, [p for ps in pred for p in ps], labels)
    head = {"accuracy": metrics.pop("accuracy")}
    if len(names) > 1:  # right after the headline (progress shows the first 4)
        per_set = {
            f"accuracy_{name}": sum(a == b for a, b in zip(p, g, strict=True)) / max(1, len(p))
            for name, p, g in zip(names, pred, gold, strict=True)
        }
        head |= per_set | {"accuracy_mean": sum(per_set.values()) / len(per_set)}
    known = [(r, g) for r, g in zip(flat, flat_gold, strict=True) if g >= 0]
    return {**head, "macro_f1": metrics.pop("macro_f1"), **calibration_metrics(flat, flat_gold),
            **metrics, "reliability": reliability(known)}  # fmt: skip


def language_model_metrics(total_nats: float, tokens: int, chars: float) -> dict[str, float]:
    """From the summed negative log-likelihood of `tokens` predictions covering `chars`."""
    nats_char = total_nats / chars
    return {
        "nats_per_char": nats_char,
        "bits_per_char": nats_char / math.log(2),
        "perplexity": math.exp(nats_char),
        "nats_per_token": total_nats / tokens,
        "tokens": int(tokens),  # a count: 848, not 848.0
    }


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, float]:
    """Corpus BLEU and chrF of detokenized text (sacreBLEU's defaults)."""
    import sacrebleu

    refs = [list(references)]
    return (
        sacrebleu.corpus_bleu(list(hypotheses), refs).score,
        sacrebleu.corpus_chrf(list(hypotheses), refs).score,
    )


def ud_scores(gold: str | Any, system: str) -> dict[str, dict[str, float]]:
    """The official CoNLL 2018 UD evaluation (udtools' udeval) of system CoNLL-U text against
    a gold CoNLL-U file (a path, or an open text stream): per metric (Tokens, Sentences,
    Words, UPOS, ...) precision, recall, F1 and the gold count."""
    import io

    try:
        from udtools import udeval
    except ImportError:
        from seqtool.errors import SeqtoolError

        raise SeqtoolError("scoring CoNLL-U needs udtools' udeval: pip install udtools") from None
    try:
        if isinstance(gold, str):
            gold_ud = udeval.load_conllu_file(gold)
        else:
            gold_ud = udeval.load_conllu(gold, getattr(gold, "name", "gold"), {})
        system_ud = udeval.load_conllu(io.StringIO(system), "system", {})
        scores = udeval.evaluate(gold_ud, system_ud)
    except udeval.UDError as e:
        from seqtool.errors import SeqtoolError

        raise SeqtoolError(f"udeval: {e}") from None
    return {
        k: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.gold_total}
        for k, s in scores.items()
    }


# -- tables for `seqtool eval` -----------------------------------------------------------------


def prf_table(title: str, first: str, rows: Mapping[str, Mapping[str, float]], f1: str = "f1"):
    """A rich table of per-label precision / recall / F1 / support, in the given order."""
    from rich.table import Table

    table = Table(title=title)
    for col in (first, "precision", "recall", f1, "support"):
        table.add_column(col, justify="left" if col == first else "right")
    for name, m in rows.items():
        table.add_row(
            name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(m["support"])
        )
    return table


def confusion_table(labels: Sequence[str], matrix: Sequence[Sequence[int]]):
    """Rows: gold labels; columns: predicted."""
    from rich.table import Table

    table = Table(title="confusion matrix")
    table.add_column("gold \\ predicted")
    for name in labels:
        table.add_column(name, justify="right")
    for name, row in zip(labels, matrix, strict=True):
        table.add_row(name, *map(str, row))
    return table
