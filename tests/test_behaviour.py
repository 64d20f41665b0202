"""A behavioural check of the shipped sentiment model (CheckList-style, Ribeiro et al. 2020):
corpora/sentiment-behaviour.csv lists negated, intensified and contrasted phrases with their
obvious labels, written for the project. The shipped model must keep the pass rate it
shipped with (docs/models.md), and be sure of itself only where it is right."""

from __future__ import annotations

import csv
from collections import Counter

from conftest import ROOT

from seqtool import paths

LIST = ROOT / "corpora" / "sentiment-behaviour.csv"
SHIPPED_PASS_RATE = 31 / 49  # the shipped model's pass rate (docs/models.md)


def _rows() -> list[dict[str, str]]:
    with LIST.open(newline="") as f:
        return list(csv.DictReader(f))


def test_the_list_is_balanced_and_labelled():
    rows = _rows()
    assert len(rows) >= 40
    assert len({r["text"].lower() for r in rows}) == len(rows)  # no duplicates
    assert set(r["label"] for r in rows) == {"positive", "negative"}
    kinds = Counter(r["kind"] for r in rows)
    assert kinds["negated negative"] >= 10 and kinds["negated positive"] >= 10


def test_shipped_model_keeps_its_pass_rate():
    from seqtool import api

    model = api.load(paths.default_model("classifier"), "classifier")
    rows = _rows()
    preds = model.predict([r["text"] for r in rows])
    passed = [p[0] == r["label"] for p, r in zip(preds, rows, strict=True)]
    rate = sum(passed) / len(rows)
    failed = [r["text"] for r, ok in zip(rows, passed, strict=True) if not ok]
    assert rate >= SHIPPED_PASS_RATE, f"pass rate {rate:.3f}; failed: {failed}"
