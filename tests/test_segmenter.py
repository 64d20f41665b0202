"""The segmenter (tokenizer + sentence splitter): CoNLL-U to labelled characters and back, a
tiny model trained and scored through udeval, the `tokenize words|sentences` filters, and
`seqtool tag` on raw text.

The tiny model (hidden 16) trains on corpora/pos-sample.conllu in seconds; CLI behaviour that
needs a real segmenter uses the shipped one (checkpoints/segment-en.safetensors).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from seqtool.data import segmenting as seg
from seqtool.data.conllu import read_conllu, to_conllu

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "corpora" / "pos-sample.conllu"
TINY = ["--hidden", "16", "--embedding-dim", "8", "--threads", "1", "--seq-len", "64",
        "--batch-size", "8", "--lr", "0.02", "--warmup", "5"]  # fmt: skip
# Two paragraphs: a multiword token with SpaceAfter=No on its range line, and a sentence
# that ends without a space before the next.
EXTRA = """# newpar
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\t_\t_\t_\t_\t0\troot\t_\t_
2\tn't\t_\t_\t_\t_\t1\tdep\t_\t_
3\tgo\t_\t_\t_\t_\t1\tdep\t_\tSpaceAfter=No
4\t.\t_\t_\t_\t_\t1\tdep\t_\tSpaceAfter=No

# text = Stay!
1\tStay\t_\t_\t_\t_\t0\troot\t_\tSpaceAfter=No
2\t!\t_\t_\t_\t_\t1\tdep\t_\t_

# text = I can't.
1\tI\t_\t_\t_\t_\t0\troot\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\tSpaceAfter=No
2\tca\t_\t_\t_\t_\t1\tdep\t_\t_
3\tn't\t_\t_\t_\t_\t1\tdep\t_\t_
4\t.\t_\t_\t_\t_\t1\tdep\t_\t_

# newpar
# text = Yes.
1\tYes\t_\t_\t_\t_\t0\troot\t_\tSpaceAfter=No
2\t.\t_\t_\t_\t_\t1\tdep\t_\t_

"""


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("segmenter") / "seg.safetensors"
    args = ["train", "segmenter", SAMPLE, "--dev", SAMPLE, "-o", out, "--steps", "120", *TINY]
    r = run_cli(*args)
    assert r.code == 0, r
    return out


@pytest.fixture(scope="module")
def model(model_path):
    from seqtool import api

    return api.load(model_path, "segmenter", "test")


# -- data: CoNLL-U <-> labelled characters --------------------------------------------------


def _layout(conllu: str) -> list[tuple]:
    """What the segmentation decides, per sentence: text, tokens with SpaceAfter, words."""
    return [
        (s.metadata.get("text"), seg.tokens_of(s), s.words)
        for s in read_conllu(conllu.splitlines())
    ]


@pytest.mark.parametrize("conllu", [SAMPLE.read_text(), EXTRA], ids=["sample", "mwt-spaceafter"])
def test_gold_labels_round_trip_the_tokenization_exactly(conllu):
    counts: Counter = Counter()
    paragraphs = list(seg.read_paragraphs(conllu.splitlines(), "gold", counts))
    mwt = seg.Multiwords.learn(counts)
    texts = [p.text for p in paragraphs]
    decoded = seg.decode(texts, [p.labels for p in paragraphs], mwt)
    out = "".join(
        to_conllu(seg.to_sentence(t, toks), ["_"] * sum(len(x.words) for x in toks))
        for t, sents in zip(texts, decoded, strict=True)
        for toks in sents
    )
    assert _layout(out) == _layout(conllu)
    assert "2-3\tcan't" in out or conllu != EXTRA


def test_paragraphs_join_sentences_as_written():
    paragraphs = list(seg.read_paragraphs(EXTRA.splitlines(), "x"))
    assert [p.text for p in paragraphs] == ["Don't go.Stay! I can't.", "Yes."]
    labels = "".join(str(x) for x in paragraphs[0].labels)
    assert labels == "00002001300013010000023"  # 2: multiword token end, 3: sentence end
    assert seg.sentence_texts(paragraphs[0]) == ["Don't go.", "Stay!", "I can't."]


def test_multiwords_keep_case_and_fall_back_to_clitic_rules():
    mwt = seg.Multiwords({"don't": ["do", "n't"], "cannot": ["can", "not"]}, usual=["cannot"])
    assert mwt.split("DON'T") == ["DO", "N'T"] and mwt.split("Cannot") == ["Can", "not"]
    assert mwt.split("they'll") == ["they", "'ll"] and mwt.split("Ann’s") == ["Ann", "’s"]
    assert mwt.split("table") == ["table"]
    assert mwt.split("cannot", predicted=False) == ["can", "not"]  # usually split
    assert mwt.split("don't", predicted=False) == ["don't"]


def test_decode_ends_tokens_at_spaces_and_sentences_at_the_end():
    (sents,) = seg.decode(["Hi there.Bye"], [np.array([0, 1, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0])],
                          seg.Multiwords({}))  # fmt: skip
    assert [[t.form for t in s] for s in sents] == [["Hi", "there", "."], ["Bye"]]
    (one,) = seg.decode(["Hi there.Bye"], [np.zeros(12, np.int8)], seg.Multiwords({}), split=False)
    assert [[t.form for t in s] for s in one] == [["Hi", "there.Bye"]]
    assert seg.decode(["", "  "], [np.zeros(0, np.int8), np.zeros(2, np.int8)],
                      seg.Multiwords({})) == [[], []]  # fmt: skip


def test_training_windows_start_at_sentences_and_end_with_padding():
    paragraphs = list(seg.read_paragraphs(SAMPLE.read_text().splitlines(), "s"))
    y = paragraphs[0].labels
    ids = np.arange(len(y)) % 50 + 4
    source = seg.WindowSource(ids, y, batch_size=64, length=40, seed=1)
    batch = source.next_batch()
    chars, labels = batch["chars"], batch["labels"]
    assert chars.shape == labels.shape == (64, 40)
    padded = chars == seg.PAD
    assert padded.any() and (labels[padded] == seg.IGNORE).all()
    # a padded row's last real label is a sentence end: the end of input ends a sentence
    rows = padded.any(1).nonzero().flatten().tolist()
    assert all(labels[r][~padded[r]][-1] == seg.SENTENCE for r in rows)
    state = source.state_dict()
    again = source.next_batch()
    source.load_state_dict(state)
    assert torch.equal(source.next_batch()["chars"], again["chars"])  # resumable


# -- the model ----------------------------------------------------------------------------


def test_tiny_model_scores_through_udeval(model_path):
    r = run_cli("eval", model_path, SAMPLE, "--format", "json")
    assert r.code == 0, r
    m = json.loads(r.out)
    for k in ("tokens_f1", "words_f1", "sentences_f1", "lines_tokens_f1", "lines_words_f1"):
        assert 0.0 <= m[k] <= 1.0, k
    assert m["tokens_f1"] > 0.9  # spaces alone get most tokens right
    assert set(m["udeval"]) == {"raw paragraphs", "sentence per line"}
    assert m["udeval"]["sentence per line"]["Sentences"]["f1"] == 1.0
    table = run_cli("eval", model_path, SAMPLE)
    assert "udeval: raw paragraphs" in table.out and "Words" in table.out


def test_udeval_missing_is_one_line(monkeypatch):
    import builtins

    from seqtool.errors import SeqtoolError
    from seqtool.metrics import ud_scores

    real = builtins.__import__

    def no_udtools(name, *args, **kwargs):
        if name.startswith("udtools"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_udtools)
    with pytest.raises(SeqtoolError, match="pip install udtools"):
        ud_scores(str(SAMPLE), "")


def test_a_long_line_without_spaces_is_read_in_bounded_windows(model, monkeypatch):
    shapes: list[tuple[int, ...]] = []
    real = model.forward
    monkeypatch.setattr(model, "forward", lambda x: (shapes.append(tuple(x.shape)), real(x))[1])
    text = "abc.def,ghi" * 20_000  # 220k characters, no space
    (labels,) = model.label([text], window=64, context=8, max_chars=1024)
    assert len(labels) == len(text) and len(shapes) > 200
    assert max(b * t for b, t in shapes) <= 1024 and max(t for _, t in shapes) <= 64
    (sents,) = model.segment([text], window=64, context=8, max_chars=1024)
    assert "".join(t.form for s in sents for t in s) == text


def test_windows_agree_with_one_pass(model):
    text = " ".join(["The cat sleeps on the mat.", "I don't know, and you do too."] * 8)
    (whole,) = model.label([text], window=4096, context=0)
    (cut,) = model.label([text], window=80, context=30)
    assert (whole == cut).mean() > 0.97


# -- CLI ------------------------------------------------------------------------------------


def test_tokenize_words_and_sentences_filters():
    r = run_cli("tokenize", "words", stdin="I don't know, do you?\n\nIt's late.\n")
    assert r.code == 0, r
    assert r.out.split("\n") == ["I do n't know , do you ?", "", "It 's late .", ""]
    text = "The cat sleeps. Does it dream? I think so.\n\nA new paragraph.\n"
    r = run_cli("tokenize", "sentences", stdin=text)
    assert r.code == 0, r
    assert r.out == "The cat sleeps.\nDoes it dream?\nI think so.\n\nA new paragraph.\n"
    assert run_cli("tokenize", "sentences", stdin="").out == ""


def test_tokenize_filters_take_a_model_and_files(model_path, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("The cat sleeps on the mat .\n")
    r = run_cli("tokenize", "words", "-m", model_path, f)
    assert r.code == 0 and r.out == "The cat sleeps on the mat .\n", r
    r = run_cli("tokenize", "words", tmp_path)
    assert r.code == 2 and "is a directory" in r.err and r.out == ""


def test_non_utf8_follows_encoding_errors():
    bad = b"caf\xe9 au lait.\n"
    r = run_cli("tokenize", "words", stdin=bad)
    assert r.code == 2 and r.out == "" and "<stdin>:1" in r.err and r.err.count("\n") == 1
    r = run_cli("tokenize", "words", "--encoding-errors", "replace", stdin=bad)
    assert r.code == 0 and r.out == "caf\ufffd au lait .\n", r
    r = run_cli("tag", "--encoding-errors", "ignore", stdin=bad)
    assert r.code == 0 and r.out.startswith("caf/"), r


def test_tag_segments_text_by_default_and_pretokenized_keeps_spaces():
    r = run_cli("tag", "--format", "jsonl", stdin="I can't go.\n\nThe end\n")
    assert r.code == 0, r
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [x["words"] for x in rows] == [["I", "ca", "n't", "go", "."], [], ["The", "end"]]
    r = run_cli("tag", "--pretokenized", "--format", "jsonl", stdin="I can't go.\n")
    assert json.loads(r.out)["words"] == ["I", "can't", "go."]
    tok = run_cli("tag", "--tokenize", stdin="I can't go.\n")  # an alias of the default
    assert tok.out == run_cli("tag", stdin="I can't go.\n").out
    r = run_cli("tag", "--pretokenized", "--input-format", "raw", stdin="a\n")
    assert r.code == 2 and "raw" in r.err
    r = run_cli("tag", "--pretokenized", "--segmenter", "x", stdin="a\n")
    assert r.code == 2 and "exclude" in r.err
    r = run_cli("tag", "--segmenter", "x", "--input-format", "conllu", stdin="")
    assert r.code == 2 and "--segmenter" in r.err


def test_tag_raw_conllu_is_what_udeval_aligns(tmp_path):
    from seqtool.metrics import ud_scores

    text = "I don't know. It's late!\n\nYes.\n"
    r = run_cli("tag", "--input-format", "raw", "--format", "conllu", stdin=text)
    assert r.code == 0, r
    blocks = r.out.strip("\n").split("\n\n")
    assert [b.splitlines()[:2] for b in blocks][0] == ["# newpar", "# text = I don't know."]
    assert len(blocks) == 3 and "2-3\tdon't" in blocks[0] and "SpaceAfter=No" in blocks[0]
    heads = [ln.split("\t")[6] for b in blocks for ln in b.splitlines() if ln[0].isdigit()
             and "-" not in ln.split("\t")[0]]  # fmt: skip
    assert set(heads) == {"0", "1"}  # a flat tree: no parser behind it
    # scored against a hand-made gold segmentation of the text (not against itself)
    gold = tmp_path / "gold.conllu"
    gold.write_text(GOLD_RAW)
    scores = ud_scores(str(gold), r.out)
    assert scores["Tokens"]["f1"] == scores["Words"]["f1"] == scores["Sentences"]["f1"] == 1.0


def _gold_rows(*rows: str) -> str:
    out = []
    for row in rows:
        ident, form, *misc = row.split()
        head = "_\t_" if "-" in ident else ("0\troot" if ident == "1" else "1\tdep")
        out.append(f"{ident}\t{form}\t_\t_\t_\t_\t{head}\t_\t{misc[0] if misc else '_'}")
    return "\n".join(out) + "\n"


NO_SPACE = "SpaceAfter=No"
GOLD_RAW = (
    "# newpar\n# text = I don't know.\n"
    + _gold_rows("1 I", "2-3 don't", "2 do", "3 n't", f"4 know {NO_SPACE}", "5 .")
    + "\n# text = It's late!\n"
    + _gold_rows("1-2 It's", "1 It", "2 's", f"3 late {NO_SPACE}", "4 !")
    + "\n# newpar\n# text = Yes.\n"
    + _gold_rows(f"1 Yes {NO_SPACE}", "2 .")
    + "\n"
)


def test_tag_raw_jsonl_names_the_line_and_text_of_each_sentence():
    """Running text gives several sentences per input line: jsonl says which line each came
    from (also across batches) and its text, so a pipeline can join them back."""
    text = "I like it. You do too.\n\nGo home.\n"
    r = run_cli("tag", "--input-format", "raw", "--format", "jsonl", "-b", "1", stdin=text)
    assert r.code == 0, r
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [(x["line"], x["text"]) for x in rows] == [
        (1, "I like it."), (1, "You do too."), (2, ""), (3, "Go home."),
    ]  # fmt: skip
    assert rows[2]["words"] == [] and rows[3]["words"] == ["Go", "home", "."]
    r = run_cli("tag", "--format", "jsonl", stdin="I like it.\n")  # a sentence per line: 1:1
    assert "line" not in json.loads(r.out)
