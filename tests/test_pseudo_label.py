"""`seqtool pseudo-label`: sentences of labelled documents, labelled and filtered by a teacher."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import run_cli

from seqtool.errors import SeqtoolError
from seqtool.recipes.pseudo_label import (
    Ensemble,
    PseudoLabelStats,
    pseudo_label,
    split_sentences,
)


def test_split_sentences():
    assert split_sentences("It was great. I loved it!<br /><BR/>Go see it?  Yes") == [
        "It was great.",
        "I loved it!",
        "Go see it?",
        "Yes",
    ]
    # Closing quotes stay with their sentence; no cut before a lowercase word (e.g. x).
    assert split_sentences('He said "no." Then he left, e.g. at 9. 3 stars.') == [
        'He said "no."',
        "Then he left, e.g. at 9.",
        "3 stars.",
    ]
    assert split_sentences("one line\ntwo lines") == ["one line", "two lines"]
    assert split_sentences("  ") == []


class FakeTeacher:
    """predict() as Classifier's: a label and score per text, from a lookup."""

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers
        self.seen: list[str] = []

    def predict(self, texts, batch_size=256):
        self.seen += texts
        out = []
        for t in texts:
            label, p = self.answers[t]
            out.append((label, p, [p, 1 - p]))
        return out


def test_keeps_confident_sentences_that_agree_with_the_document():
    teacher = FakeTeacher(
        {
            "A great film with heart.": ("pos", 0.97),
            "The plot follows two brothers.": ("pos", 0.6),  # agrees, but not confident
            "Sadly the ending drags on.": ("neg", 0.95),  # confident but disagrees
            "Terrible acting all round.": ("neg", 0.99),
        }
    )
    stats = PseudoLabelStats()
    docs = [
        "A great film with heart. The plot follows two brothers. Sadly the ending drags on. Ok.",
        "Terrible acting all round.",
    ]
    rows = pseudo_label(teacher, docs, ["pos", "neg"], stats, min_score=0.9, min_words=3)
    assert rows == [
        ("A great film with heart.", "pos", 0.97),
        ("Terrible acting all round.", "neg", 0.99),
    ]
    assert "Ok." not in teacher.seen  # under --min-words: never labelled
    assert (stats.documents, stats.units, stats.agreed) == (2, 4, 3)
    assert stats.kept == {"pos": 1, "neg": 1}


def test_no_veto_keeps_disagreeing_sentences_with_the_teachers_label():
    teacher = FakeTeacher(
        {
            "A great film with heart.": ("pos", 0.97),
            "Sadly the ending drags on.": ("neg", 0.95),  # disagrees with its document
            "The plot follows two brothers.": ("pos", 0.6),
        }
    )
    stats = PseudoLabelStats()
    doc = "A great film with heart. Sadly the ending drags on. The plot follows two brothers."
    rows = pseudo_label(teacher, [doc], ["pos"], stats, min_score=0.0, min_words=3, veto=False)
    assert rows == [
        ("A great film with heart.", "pos", 0.97),
        ("Sadly the ending drags on.", "neg", 0.95),
        ("The plot follows two brothers.", "pos", 0.6),
    ]
    assert (stats.units, stats.agreed) == (3, 2)  # agreement is still counted
    assert stats.kept == {"pos": 2, "neg": 1}


def test_without_document_labels_only_the_score_filters():
    teacher = FakeTeacher({"sadly the ending drags on .": ("neg", 0.95), "fine .": ("pos", 0.5)})
    stats = PseudoLabelStats()
    rows = pseudo_label(
        teacher,
        ["Sadly the ending drags on. Fine."],
        None,
        stats,
        min_words=2,
        normalize=True,
        lowercase=True,
    )
    assert rows == [("sadly the ending drags on .", "neg", 0.95)]


def _tiny(seed: int, labels=("neg", "pos")):
    import torch

    from seqtool import tokenizers
    from seqtool.config import BackboneConfig
    from seqtool.tasks.classifier import Classifier, ClassifierConfig

    tok = tokenizers.train(["abcdefghij klmnopqrstuvwxyz"], "char")
    cfg = ClassifierConfig(
        backbone=BackboneConfig(vocab_size=tok.vocab_size, embedding_dim=10, hidden_size=7),
        num_labels=len(labels),
    )
    torch.manual_seed(seed)
    return Classifier(cfg, tok, list(labels)).eval()


def test_ensemble_averages_the_teachers_probabilities():
    import torch

    a, b = _tiny(0), _tiny(1)
    texts = ["a fine film", "dull", "not bad at all"]
    pa = torch.tensor([p for _, _, p in a.predict(texts)])
    pb = torch.tensor([p for _, _, p in b.predict(texts)])
    got = Ensemble([a, b]).predict(texts)
    mean = (pa + pb) / 2
    assert torch.allclose(torch.tensor([p for _, _, p in got]), mean, atol=1e-6)
    assert [y for y, _, _ in got] == [["neg", "pos"][int(i)] for i in mean.argmax(-1)]
    assert [s for _, s, _ in got] == pytest.approx(mean.max(-1).values.tolist())
    with pytest.raises(SeqtoolError, match="labels differ"):
        Ensemble([a, _tiny(2, ("bad", "good"))])


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture()
def reviews(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text(
        "id,text,label\n"
        '1,"A wonderful film with a warm heart. I loved every minute of it!",positive\n'
        '2,"Dull and lifeless. A waste of time and money.<br />The worst film this year.",negative\n'
        '3,"A warm and funny film. The actors are wonderful.",positive\n'
    )
    return f


def test_cli_writes_agreeing_confident_sentences(tiny_clf, reviews, tmp_path):
    out = tmp_path / "sents.csv"
    r = run_cli(
        "pseudo-label", reviews, "-m", tiny_clf, "--min-score", "0", "--lowercase", "-o", out
    )
    assert r.code == 0, r
    assert r.out == ""
    rows = _csv(out.read_text())
    assert rows and set(rows[0]) == {"text", "label", "score"}
    gold = {
        "a wonderful film with a warm heart.": "positive",
        "i loved every minute of it!": "positive",
        "dull and lifeless.": "negative",
        "a waste of time and money.": "negative",
        "the worst film this year.": "negative",
        "a warm and funny film.": "positive",
        "the actors are wonderful.": "positive",
    }
    for row in rows:  # every kept sentence is one of the documents' and agrees with its label
        assert gold[row["text"]] == row["label"]
    assert "3 documents" in r.err and "kept" in r.err
    # A high bar keeps a subset, with every score above it.
    r = run_cli("pseudo-label", reviews, "-m", tiny_clf, "--min-score", "0.7", "--lowercase")
    assert r.code == 0, r
    high = _csv(r.out)
    assert len(high) <= len(rows)
    assert all(float(x["score"]) >= 0.7 for x in high)


def test_cli_text_lines_whole(tiny_clf):
    r = run_cli(
        "pseudo-label",
        "-m",
        tiny_clf,
        "--whole",
        "--min-score",
        "0",
        "--min-words",
        "1",
        stdin="i loved it\ndull and lifeless\n",
    )
    assert r.code == 0, r
    assert [x["text"] for x in _csv(r.out)] == ["i loved it", "dull and lifeless"]


def _one_line_error(r, *needles: str) -> None:
    assert r.code == 2, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqtool: error:"), r.err
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_bad_input(tiny_clf, tiny_lm, reviews, tmp_path):
    out = tmp_path / "o.csv"
    r = run_cli("pseudo-label", reviews, "-m", tiny_clf, "--label-column", "stars", "-o", out)
    _one_line_error(r, "'stars'", "'id'", "'text'", "'label'")
    assert not out.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine film,positive\nawful film,meh\n")
    r = run_cli("pseudo-label", bad, "-m", tiny_clf, "-o", out)
    _one_line_error(r, f"{bad}:3", "'meh'")
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    _one_line_error(run_cli("pseudo-label", reviews, "-m", tiny_lm), "lm checkpoint")
    _one_line_error(run_cli("pseudo-label", reviews, "-m", tiny_clf, "--min-score", "2"), "[0, 1]")
    _one_line_error(run_cli("pseudo-label", "-m", tiny_clf, stdin=""), "no documents")


# -- inputs are read as what they are (issue 16, item 3) -------------------------------------


def test_stdin_with_a_table_option_is_a_table(tiny_clf, reviews):
    from_file = run_cli("pseudo-label", reviews, "-m", tiny_clf, "--min-score", "0")
    args = ("pseudo-label", "-m", tiny_clf, "--min-score", "0")
    piped = run_cli(*args, "--label-column", "label", stdin=reviews.read_text())
    assert piped.code == 0 and piped.out == from_file.out, piped
    assert "3 documents" in piped.err and "agreed" in piped.err
    # --text-column alone makes stdin a table too (its label column is then found by name)
    piped = run_cli(*args, "--text-column", "text", stdin=reviews.read_text())
    assert piped.out == from_file.out


def test_options_that_cannot_apply_are_errors(tiny_clf, reviews, tmp_path):
    args = ("pseudo-label", "-m", tiny_clf)
    r = run_cli(*args, "--input-format", "text", "--label-column", "label", stdin="a b c d\n")
    _one_line_error(r, "--label-column", "text lines")
    lines = tmp_path / "docs.txt"
    lines.write_text("a fine film with a warm heart\n")
    _one_line_error(run_cli(*args, lines, "--text-column", "review"), "--text-column", "docs.txt")
    # --veto/--no-veto compares with the documents' labels: none in text lines or this table
    _one_line_error(run_cli(*args, "--no-veto", stdin="a fine film indeed\n"), "--no-veto")
    unlabelled = tmp_path / "u.csv"
    unlabelled.write_text("id,text\n1,a fine film with a warm heart\n")
    _one_line_error(run_cli(*args, unlabelled, "--veto"), "--veto", "'id'", "--label-column")
    assert run_cli(*args, unlabelled, "--min-score", "0").code == 0  # no labels: fine
    assert run_cli(*args, reviews, "--no-veto", "--min-score", "0").code == 0
    _one_line_error(run_cli(*args, tmp_path), f"{tmp_path}: is a directory")
