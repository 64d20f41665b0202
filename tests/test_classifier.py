"""The classifier: train -> classify -> eval through the CLI, bad input, padding, checkpoints."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, run_cli

SAMPLE = ROOT / "corpora" / "sentiment-sample.csv"


def _rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(newline="") as f:
        return list(csv.reader(f))


def _tiny_model(
    pool: str = "last",
    cell: str = "lstm",
    layers: int = 1,
    bidirectional: bool = True,
    **extra,
):
    from seqtool import tokenizers
    from seqtool.config import BackboneConfig
    from seqtool.tasks.classifier import Classifier, ClassifierConfig

    tok = tokenizers.train(["abcdefghij klmnopqrstuvwxyz"], "char")
    cfg = ClassifierConfig(
        backbone=BackboneConfig(
            vocab_size=tok.vocab_size,
            embedding_dim=10,
            hidden_size=7,
            layers=layers,
            cell=cell,
            bidirectional=bidirectional,
        ),
        num_labels=3,
        pool=pool,
        **extra,
    )
    torch.manual_seed(0)
    return Classifier(cfg, tok, ["a", "b", "c"]).eval()


# -- train -> classify -> eval ---------------------------------------------------------------------


def test_training_learns_the_sample(tiny_clf):
    r = run_cli("eval", tiny_clf, SAMPLE, "--format", "json")
    assert r.code == 0, r
    m = json.loads(r.out)
    assert m["accuracy"] >= 0.9  # 36 training rows; a learning model fits them
    assert set(m) >= {"accuracy", "macro_f1", "per_class", "confusion"}
    assert m["confusion"]["labels"] == ["negative", "positive"]
    assert sum(map(sum, m["confusion"]["matrix"])) == 36


def test_eval_table_has_per_class_and_confusion(tiny_clf):
    r = run_cli("eval", tiny_clf, SAMPLE)
    assert r.code == 0, r
    # The tables are the command's result: stdout (issue 16, item 2; they were on stderr).
    assert "per class" in r.out and "confusion matrix" in r.out and "macro_f1" in r.out
    assert "confusion matrix" not in r.err


def test_classify_csv_appends_label_and_score(tiny_clf, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text\n1,"great, lovely film"\n2,a boring mess\n')
    r = run_cli("classify", "-m", tiny_clf, src)
    assert r.code == 0, r
    import csv
    import io

    rows = list(csv.reader(io.StringIO(r.out)))
    assert rows[0] == ["id", "text", "label", "score"]
    assert [row[:2] for row in rows[1:]] == [["1", "great, lovely film"], ["2", "a boring mess"]]
    for row in rows[1:]:
        assert row[2] in ("positive", "negative") and 0.5 <= float(row[3]) <= 1.0


def test_classify_csv_with_a_label_column_keeps_it(tiny_clf):
    r = run_cli("classify", "-m", tiny_clf, SAMPLE)
    assert r.code == 0, r
    header = r.out.splitlines()[0]
    assert header == "text,label,predicted_label,predicted_score"
    assert len(r.out.splitlines()) == 37


def test_classify_stdin_lines_in_order(tiny_clf):
    lines = ["a wonderful film", "", "a waste of time"] * 500  # crosses several read chunks
    r = run_cli("classify", "-m", tiny_clf, "--batch-size", "16", stdin="\n".join(lines) + "\n")
    assert r.code == 0, r
    out = r.out.splitlines()
    assert len(out) == len(lines)
    single = {
        t: run_cli("classify", "-m", tiny_clf, stdin=t + "\n").out.strip() for t in set(lines)
    }
    assert out == [single[t] for t in lines]  # same answer alone or in a big batch, in order
    label, score = out[0].split("\t")
    assert label in ("positive", "negative") and 0.5 <= float(score) <= 1


def test_classify_jsonl_has_all_probabilities(tiny_clf, tmp_path):
    r = run_cli("classify", "-m", tiny_clf, "--format", "jsonl", stdin="i loved it\n")
    assert r.code == 0, r
    obj = json.loads(r.out)
    assert obj["text"] == "i loved it" and obj["label"] in obj["probs"]
    assert abs(sum(obj["probs"].values()) - 1) < 1e-4
    assert obj["score"] == max(obj["probs"].values())
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "great", "id": 7}\n{"text": "awful", "id": 8}\n')
    r = run_cli("classify", "-m", tiny_clf, src)
    objs = [json.loads(x) for x in r.out.splitlines()]
    assert [o["id"] for o in objs] == [7, 8] and all("probs" in o for o in objs)


def test_classify_output_file_is_written_whole(tiny_clf, tmp_path):
    out = tmp_path / "labelled.csv"
    r = run_cli("classify", "-m", tiny_clf, SAMPLE, "-o", out)
    assert r.code == 0, r
    assert r.out == "" and len(_rows(out)) == 37
    assert not list(tmp_path.glob(".*.tmp"))


# -- bad input: exit 2, one line, no partial output -----------------------------------------------


def _one_line_error(r, *needles: str) -> None:
    assert r.code == 2, r
    assert r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seqtool: error:"), r.err
    for n in needles:
        assert n in lines[0], lines[0]


def _train(tmp_path, data: Path, *extra: str):
    out = tmp_path / "m.safetensors"
    r = run_cli(
        "train", "classifier", data, "-o", out, *TINY, "--tokenizer", "char", "--steps", "2", *extra
    )
    return r, out


def test_missing_column_lists_the_columns(tmp_path):
    r, out = _train(tmp_path, SAMPLE, "--text-column", "review")
    _one_line_error(r, "'review'", "'text'", "'label'")
    assert not out.exists()


def test_one_class_label_column(tmp_path):
    f = tmp_path / "one.csv"
    f.write_text("text,label\ngood,positive\nfine,positive\n")
    r, out = _train(tmp_path, f)
    _one_line_error(r, "one class", "'positive'", "one.csv")
    assert not out.exists()


def test_empty_text_names_the_line(tmp_path):
    f = tmp_path / "empty.csv"
    f.write_text('text,label\ngood,positive\n"  ",negative\nbad,negative\n')
    r, _ = _train(tmp_path, f)
    _one_line_error(r, f"{f}:3", "empty text")


def test_broken_quote_names_the_line(tmp_path, tiny_clf):
    f = tmp_path / "quote.csv"
    f.write_text('text,label\ngood,positive\n"bad,negative\nok,positive\n')
    r, _ = _train(tmp_path, f)
    _one_line_error(r, f"{f}:3")
    r = run_cli("classify", "-m", tiny_clf, f)
    _one_line_error(r, f"{f}:3")


def test_ragged_row_names_the_line(tmp_path):
    f = tmp_path / "ragged.csv"
    f.write_text("text,label\ngood,positive\nbad,negative,extra\n")
    r, _ = _train(tmp_path, f)
    _one_line_error(r, f"{f}:3", "3 field(s)")


def test_classify_missing_text_column(tiny_clf, tmp_path):
    f = tmp_path / "cols.csv"
    f.write_text("review,stars\nnice,5\n")
    _one_line_error(run_cli("classify", "-m", tiny_clf, f), "'review'", "'stars'", "--text-column")


def test_non_classifier_checkpoint_says_what_it_is(tiny_lm):
    r = run_cli("classify", "-m", tiny_lm, stdin="hello\n")
    _one_line_error(r, "is an lm checkpoint", "classifier")  # "a lm" before issue 16, item 8


def test_unknown_dev_label_is_not_a_crash(tiny_clf, tmp_path):
    f = tmp_path / "dev.csv"
    f.write_text("text,label\ngood,positive\nmeh,neutral\n")
    r = run_cli("eval", tiny_clf, f, "--format", "json")
    assert r.code == 0, r
    m = json.loads(r.out)
    assert m["examples"] == 2 and m["unknown_gold_labels"] == 1 and m["accuracy"] <= 0.5


# -- model properties ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pool,cell,layers",
    [("last", "lstm", 1), ("max", "lstm", 2), ("mean", "gru", 1), ("last", "rnn", 2)],
)
def test_padding_does_not_leak(pool, cell, layers):
    model = _tiny_model(pool, cell, layers)
    short, long_ = "abc de", "the quick brown fox jumps over"
    alone = model.predict_ids(model.encode([short]))
    batch = model.predict_ids(model.encode([short, long_, "x"]))
    torch.testing.assert_close(batch[0], alone[0], atol=1e-6, rtol=1e-5)
    # The backward direction really sees the text: reversing it changes the output.
    rev = model.predict_ids(model.encode([short[::-1]]))
    assert not torch.allclose(rev, alone)


def test_last_pool_is_final_forward_and_backward_states():
    from seqtool.data.batching import pad

    model = _tiny_model("last")
    ids, lens = pad(model.encode(["abc", "abcdefg"]), 0)
    out, _ = model.backbone(ids, lens)  # (B, T, 2H)
    H = 7
    expect = torch.cat(
        [out[0, 2, :H], out[0, 0, H:]]
    )  # forward at its last token, backward at the first
    got = {}
    model.dropout.register_forward_hook(lambda m, i, o: got.setdefault("pooled", i[0]))
    model(ids, lens)
    torch.testing.assert_close(got["pooled"][0], expect)


def test_checkpoint_round_trip(tmp_path):
    from seqtool import api

    model = _tiny_model("mean")
    model.text_column = "review"
    texts = ["abc", "hello world", "zz"]
    before = model.predict_ids(model.encode(texts))
    model.save(tmp_path / "m.safetensors")
    back = api.load(tmp_path / "m.safetensors", "classifier", "classify")
    assert back.labels == ["a", "b", "c"] and back.text_column == "review"
    assert back.config == model.config
    torch.testing.assert_close(back.predict_ids(back.encode(texts)), before)
    model.save(tmp_path / "h.safetensors", dtype="fp16")
    half = api.load(tmp_path / "h.safetensors")
    torch.testing.assert_close(half.predict_ids(half.encode(texts)), before, atol=2e-3, rtol=0)


def test_truncation_keeps_head_and_tail():
    from seqtool.data.labelled import truncate

    ids = list(range(100))
    assert truncate(ids, 8) == [0, 1, 94, 95, 96, 97, 98, 99]
    assert truncate(ids, 0) == ids and truncate(ids[:5], 8) == ids[:5]


def test_metrics_on_a_known_confusion():
    from seqtool.metrics import classification_metrics

    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["y"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["x"]["recall"] == pytest.approx(1 / 2)
    f1s = [0.5, 0.8, 0.0]
    assert m["macro_f1"] == pytest.approx(sum(f1s) / 3)


def test_init_from_lm_copies_the_backbone(tmp_path, tiny_lm):
    """ULMFiT-style start: embedding and forward recurrent weights equal the LM's."""
    from seqtool import api

    f = tmp_path / "chars.csv"
    f.write_text("text,label\nthe king,positive\nthe fool,negative\n")
    out = tmp_path / "from-lm.safetensors"
    r = run_cli(
        "train",
        "classifier",
        f,
        "-o",
        out,
        "--init-from",
        tiny_lm,
        "--steps",
        "1",
        "--lr",
        "1e-9",
        "--warmup",
        "0",
        "--dev-fraction",
        "0",
        "--threads",
        "1",
    )
    assert r.code == 0, r
    lm, clf = api.load(tiny_lm), api.load(out)
    assert clf.tokenizer.to_bytes() == lm.tokenizer.to_bytes()
    torch.testing.assert_close(
        clf.backbone.embedding.weight, lm.backbone.embedding.weight, atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        clf.backbone.rnn.rnn.weight_hh_l0, lm.backbone.rnn.rnn.weight_hh_l0, atol=1e-6, rtol=0
    )
    # a classifier given with an LM: fine-tuning a classifier (tests/test_fine_tune.py) takes it alone
    _one_line_error(
        run_cli(
            "train",
            "classifier",
            f,
            "-o",
            tmp_path / "x.safetensors",
            "--init-from",
            out,
            "--init-from",
            tiny_lm,
        ),  # fmt: skip
        "comes alone",
    )


def test_init_from_forward_and_reverse_lm_gives_each_direction_its_lm(tmp_path, tiny_lm):
    """With a forward and a --reverse LM, the classifier's forward states are the forward
    LM's and its backward states are the backward LM's (reading the text right to left)."""
    from conftest import SAMPLE, TINY

    from seqtool import api

    bwd = tmp_path / "bwd.safetensors"
    args = ["--steps", "20", "--batch-size", "8", "--seq-len", "32", "--lr", "0.01"]
    r = run_cli("train", "lm", SAMPLE, "-o", bwd, *TINY, *args, "--reverse", "--seed", "3")
    assert r.code == 0, r
    f = tmp_path / "chars.csv"
    f.write_text("text,label\nthe king,positive\nthe fool,negative\n")
    out = tmp_path / "both.safetensors"
    common = ["--steps", "1", "--lr", "1e-9", "--warmup", "0", "--dev-fraction", "0"]
    r = run_cli(
        "train", "classifier", f, "-o", out, "--init-from", bwd, "--init-from", tiny_lm, *common
    )
    assert r.code == 0, r
    clf, lf, lb = api.load(out), api.load(tiny_lm), api.load(bwd)
    E = lf.config.backbone.embedding_dim
    assert clf.config.backbone.embedding_dim == 2 * E
    ids = torch.tensor([clf.encode(["the king and the fool"])[0]])
    with torch.no_grad():
        out_c, _ = clf.backbone(ids, torch.tensor([ids.size(1)]))  # (1, T, 2H)
        out_f, _ = lf.backbone(ids)  # (1, T, H)
        out_b, _ = lb.backbone(ids.flip(1))  # (1, T, H), right to left
    H = lf.config.backbone.hidden_size
    torch.testing.assert_close(out_c[..., :H], out_f, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_c[..., H:], out_b.flip(1), atol=1e-5, rtol=0)
    two_fwd = run_cli(
        "train", "classifier", f, "-o", tmp_path / "x.safetensors",
        "--init-from", tiny_lm, "--init-from", tiny_lm, *common,
    )  # fmt: skip
    _one_line_error(two_fwd, "both forward LMs")


def test_normalize_text_matches_ptb_tokenized_forms():
    from seqtool.data.normalize import normalize_text

    raw = "It's GREAT, isn't it?<br /><br />(Really.)"
    assert normalize_text(raw) == "It 's GREAT , is n't it ? ( Really . )"
    ptb = "it 's great , is n't it ? -lrb- really . -rrb-"
    assert normalize_text(ptb) == normalize_text(raw).lower()
    assert normalize_text(normalize_text(raw)) == normalize_text(raw)


def test_normalize_is_stored_and_used_when_classifying(tmp_path):
    """--normalize is part of the model: raw and PTB-tokenized spellings of a text get the
    same tokens and the same prediction from the saved checkpoint."""
    from seqtool import api

    f = tmp_path / "n.csv"
    f.write_text(
        'text,label\n"I didn\'t like it.",negative\n"a great film, really!",positive\n' * 4
    )
    out = tmp_path / "n.safetensors"
    r = run_cli(
        "train", "classifier", f, "-o", out, *TINY, "--tokenizer", "char",
        "--normalize", "--lowercase", "--steps", "3", "--dev-fraction", "0",
    )  # fmt: skip
    assert r.code == 0, r
    model = api.load(out)
    assert model.config.normalize and model.config.lowercase
    raw, ptb = "It's great!<br />Didn't I say?", "it 's great ! did n't i say ?"
    assert model.encode([raw]) == model.encode([ptb])
    lines = run_cli("classify", "-m", out, stdin=f"{raw}\n{ptb}\n").out.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]


def test_two_lm_start_is_exact_for_stacked_layers(tmp_path):
    """Above layer 0 each direction reads only its own lower states at the start."""
    from seqtool import checkpoint
    from seqtool.config import BackboneConfig
    from seqtool.recipes.transfer import init_from_lm
    from seqtool.tasks.classifier import Classifier, ClassifierConfig
    from seqtool.tasks.lm import LanguageModel, LMConfig
    from seqtool.tokenizers import CharTokenizer

    tok = CharTokenizer("abcdefgh ")
    lms = []
    for reverse in (False, True):
        torch.manual_seed(int(reverse))
        bb = BackboneConfig(vocab_size=tok.vocab_size, embedding_dim=6, hidden_size=5, layers=2)
        lm = LanguageModel(LMConfig(backbone=bb, reverse=reverse), tok).eval()
        lm.save(tmp_path / f"{reverse}.safetensors")
        lms.append(lm)
    bb = BackboneConfig(
        vocab_size=tok.vocab_size, embedding_dim=12, hidden_size=5, layers=2, bidirectional=True
    )
    clf = Classifier(ClassifierConfig(backbone=bb), tok).eval()
    heads = [checkpoint.read_header(tmp_path / f"{r}.safetensors") for r in (False, True)]
    init_from_lm(clf, *heads)
    ids = torch.tensor([tok.encode("abc defg hab")])
    with torch.no_grad():
        out, _ = clf.backbone(ids, torch.tensor([ids.size(1)]))  # (1, T, 2H)
        fwd, _ = lms[0].backbone(ids)
        bwd, _ = lms[1].backbone(ids.flip(1))
    torch.testing.assert_close(out[..., :5], fwd, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., 5:], bwd.flip(1), atol=1e-6, rtol=0)


# -- n-gram bag (--ngrams) -------------------------------------------------------------------------


def test_truncate_batch_is_truncate_on_each_row():
    from seqtool.data.batching import pad
    from seqtool.data.labelled import truncate, truncate_batch

    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(1, 50, (n,), generator=g).tolist() for n in (1, 7, 8, 9, 30, 100)]
    ids, lens = pad(rows, 0)
    cut, cut_lens = truncate_batch(ids, lens, 8)
    assert cut.shape == (6, 8)
    for i, r in enumerate(rows):
        want = truncate(r, 8)
        assert cut_lens[i] == len(want)
        assert cut[i, : len(want)].tolist() == want
        assert (cut[i, len(want) :] == 0).all()  # short rows keep their padding
    same, _ = truncate_batch(ids, lens, 0)
    assert same is ids


def test_ngram_ids_are_tokens_then_hashed_pairs():
    from seqtool.data.batching import pad
    from seqtool.ngrams import ngram_ids

    V, buckets, PAD = 50, 1000, 1050
    rows = [[3, 4, 5, 3, 4], [3, 4], [9]]
    ids, lens = pad(rows, 0)
    bag = ngram_ids(ids, lens, 2, V, buckets, PAD)  # (B, T + T-1)
    assert bag.shape == (3, 9)
    real = [[x for x in r if x != PAD] for r in bag.tolist()]
    assert [len(r) for r in real] == [5 + 4, 2 + 1, 1]  # L tokens + L-1 pairs, no padding
    assert real[0][:5] == rows[0]  # tokens keep their ids
    pairs = real[0][5:]
    assert all(V <= b < V + buckets for b in pairs)
    assert pairs[0] == pairs[3]  # (3, 4) twice: the same bucket wherever it stands
    assert real[1][2] == pairs[0]  # and in another row
    assert len({pairs[0], pairs[1], pairs[2]}) == 3
    tri = ngram_ids(ids, lens, 3, V, buckets, PAD)
    assert sum(x != PAD for x in tri[0].tolist()) == 5 + 4 + 3
    assert sum(x != PAD for x in tri[1].tolist()) == 2 + 1  # too short for a trigram


def test_ngram_bag_reads_the_whole_text_and_the_backbone_its_cut():
    """With --ngrams the bag sees every token; the backbone sees the max_length head + tail,
    and the prediction is the geometric mean of the two branches' probabilities."""
    from seqtool.data.batching import pad

    model = _tiny_model("max", ngrams=2, max_length=8)
    text = "abcdefghijklmnopqrstuvwxyz"
    middle = text[:10] + "zzzz" + text[14:]  # changes tokens the backbone never reads
    end = text[:-1] + "a"
    ids, lens = pad(model.encode([text, middle, end]), 0)
    assert lens.tolist() == [26, 26, 26]  # encode keeps the whole text for the bag
    with torch.no_grad():
        main, bag = model.branches(ids, lens)
        torch.testing.assert_close(main[1], main[0])
        assert not torch.allclose(bag[1], bag[0])
        assert not torch.allclose(main[2], main[0]) and not torch.allclose(bag[2], bag[0])
        want = ((main.log_softmax(-1) + bag.log_softmax(-1)) / 2).softmax(-1)
    torch.testing.assert_close(model.predict_ids(model.encode([text, middle, end])), want)
    # Without the bag, encode cuts to max_length itself.
    plain = _tiny_model("max", max_length=8)
    assert len(plain.encode([text])[0]) == 8


def test_ngram_bag_trains_saves_and_classifies(tmp_path):
    """Each branch gets its own loss; the checkpoint keeps the bag and its settings."""
    from seqtool import api

    out = tmp_path / "ng.safetensors"
    r = run_cli(
        "train", "classifier", SAMPLE, "-o", out, *TINY, "--tokenizer", "char",
        "--ngrams", "2", "--ngram-buckets", "4096", "--ngram-dim", "4", "--steps", "60",
        "--batch-size", "8", "--warmup", "5", "--lr", "0.02", "--dev-fraction", "0",
        "--seed", "1",
    )  # fmt: skip
    assert r.code == 0, r
    model = api.load(out)
    cfg = model.config
    assert (cfg.ngrams, cfg.ngram_buckets, cfg.ngram_dim) == (2, 4096, 4)
    assert model.ngram_embed.weight.shape == (cfg.backbone.vocab_size + 4096 + 1, 4)
    rows = _rows(SAMPLE)[1:]
    with torch.no_grad():
        from seqtool.data.batching import pad

        ids, lens = pad(model.encode([t for t, _ in rows]), 0)
        _, bag = model.branches(ids, lens)
    gold = [model.labels.index(y) for _, y in rows]
    hits = sum(int(p == g) for p, g in zip(bag.argmax(-1).tolist(), gold, strict=True))
    assert hits >= 0.8 * len(rows)  # the bag learned the sample on its own loss
    r = run_cli("classify", "-m", out, stdin="a wonderful film\n")
    assert r.code == 0 and r.out.split("\t")[0] in model.labels, r


def test_ngram_options_are_checked():
    from seqtool.errors import ConfigError

    with pytest.raises(ConfigError, match="ngrams"):
        _tiny_model(ngrams=7)
    with pytest.raises(ConfigError, match="buckets"):
        _tiny_model(ngrams=2, ngram_buckets=0)


def test_classify_bf16_gives_the_fp32_labels(tiny_clf):
    from seqtool.training import runtime

    lines = "".join(f"{t}\n" for t, _ in _rows(SAMPLE)[1:])
    fp32 = run_cli("classify", "-m", tiny_clf, stdin=lines)
    bf16 = run_cli("classify", "-m", tiny_clf, "--precision", "bf16", stdin=lines)
    if not runtime.bf16_supported(torch.device("cpu"), torch.nn.LSTM):  # no bf16 LSTM kernel here
        assert bf16.code == 2 and "no bf16 LSTM kernel" in bf16.err, bf16
        return
    assert fp32.code == 0 and bf16.code == 0, (fp32, bf16)
    a = [x.split("\t")[0] for x in fp32.out.splitlines()]
    b = [x.split("\t")[0] for x in bf16.out.splitlines()]
    assert len(a) == len(b) == 36
    assert sum(x == y for x, y in zip(a, b, strict=True)) >= 34  # bf16 rounding may flip a tie
    _one_line_error(run_cli("classify", "-m", tiny_clf, "--precision", "fp16", stdin="x\n"), "fp16")


def test_inspect_reads_the_text_as_the_model_does():
    """A --lowercase model is traced on the lowercased text, as it classifies it."""
    model = _tiny_model(lowercase=True)
    tokens, x, _ = model.inspect_inputs("Abc DE")
    low_tokens, low_x, _ = model.inspect_inputs("abc de")
    assert tokens == low_tokens
    torch.testing.assert_close(x, low_x)


@pytest.mark.parametrize("select", ["mean", "pooled"])
def test_several_dev_sets_pick_the_checkpoint_by_select(tmp_path, select):
    """--select mean keeps the evaluation with the best mean of per-set accuracies, pooled
    the best accuracy over all dev rows together; each set is also reported alone."""
    rows = _rows(SAMPLE)[1:]
    small = tmp_path / "small.csv"
    small.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in rows[:5]))
    out = tmp_path / "m.safetensors"
    r = run_cli(
        "train", "classifier", SAMPLE, "-o", out, *TINY, "--tokenizer", "char",
        "--dev", SAMPLE, "--dev", small, "--select", select, "--steps", "40",
        "--eval-every", "4", "--batch-size", "8", "--warmup", "2", "--lr", "0.02",
        "--seed", "1",
    )  # fmt: skip
    assert r.code == 0, r
    log = tmp_path / "m.run" / "metrics.jsonl"
    evals = [json.loads(x)["dev"] for x in log.read_text().splitlines() if '"dev"' in x]
    assert len(evals) == 10
    for m in evals:
        per_set = [m["accuracy_sentiment-sample"], m["accuracy_small"]]
        assert m["accuracy_mean"] == pytest.approx(sum(per_set) / 2)
    key = "accuracy_mean" if select == "mean" else "accuracy"
    best = max(m[key] for m in evals)
    assert f"{key} {best:.4g}" in r.err
    first_best = next(m for m in evals if m[key] == best)
    from seqtool import api

    model = api.load(out)
    from seqtool.data.labelled import encode_labelled
    from seqtool.data.tabular import read_labelled

    saved = model.evaluate(
        [(n, encode_labelled(model, read_labelled(p, "text", "label"))) for n, p in
         (("sentiment-sample", SAMPLE), ("small", small))]
    )  # fmt: skip
    assert saved["accuracy"] == pytest.approx(first_best["accuracy"], abs=1e-6)


def test_dev_sets_with_the_same_file_name_keep_distinct_keys():
    """Two --dev files named alike (sst2/dev.csv, imdb/dev.csv) must not share one per-set
    accuracy key; file names that differ keep their plain stem."""
    from seqtool.data.labelled import set_names

    assert set_names(["a/sst2.csv", "b/imdb.csv"]) == ["sst2", "imdb"]
    assert set_names(["sst2/dev.csv", "imdb/dev.csv"]) == ["sst2/dev.csv", "imdb/dev.csv"]
    assert set_names(["x/dev.csv", "x/dev.tsv"]) == ["dev.csv", "dev.tsv"]
    assert set_names(["x/dev.csv", "x/dev.csv"]) == ["x/dev.csv#1", "x/dev.csv#2"]


def test_select_is_checked(tmp_path):
    r = run_cli(
        "train", "classifier", SAMPLE, "-o", tmp_path / "m.safetensors", *TINY,
        "--tokenizer", "char", "--select", "median", "--steps", "1",
    )  # fmt: skip
    assert r.code == 2 and "--select" in r.err, r


def test_soft_cross_entropy_is_the_cross_entropy_of_the_spread_target():
    from seqtool.recipes.soft_targets import soft_cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 2, 1, 1, 0])
    scores = torch.tensor([1.0, 0.8, 0.5, 0.0, 0.9])
    target = torch.empty(5, 3)
    for i, (y, s) in enumerate(zip(labels.tolist(), scores.tolist(), strict=True)):
        target[i] = (1 - s) / 2
        target[i, y] = s
    want = -(target * logits.log_softmax(-1)).sum(-1).mean()
    assert soft_cross_entropy(logits, labels, scores).item() == pytest.approx(want.item())
    hard = torch.nn.functional.cross_entropy(logits, labels)
    assert soft_cross_entropy(logits, labels, None).item() == pytest.approx(hard.item())
    assert soft_cross_entropy(logits, labels, torch.ones(5)).item() == pytest.approx(hard.item())


def _soft_table(path: Path, scores: list[str]) -> Path:
    rows = _rows(SAMPLE)[1:]
    rows = [rows[i * len(rows) // len(scores)] for i in range(len(scores))]  # both labels
    body = "".join(f'"{t}",{y},{s}\n' for (t, y), s in zip(rows, scores, strict=True))
    path.write_text("text,label,score\n" + body)
    return path


def test_score_column_trains_toward_the_teachers_probability(tmp_path):
    """Rows scored 0.5 carry no label information: a model trained on them alone stays
    uncertain, while the same rows as hard labels are fitted."""
    n = len(_rows(SAMPLE)) - 1  # both labels
    soft = _soft_table(tmp_path / "soft.csv", ["0.5"] * n)
    common = [
        *TINY, "--tokenizer", "char", "--steps", "120", "--batch-size", "8", "--warmup", "5",
        "--lr", "0.02", "--dev-fraction", "0", "--head-dropout", "0", "--seed", "1",
    ]  # fmt: skip
    r = run_cli("train", "classifier", soft, "-o", tmp_path / "s.safetensors", *common,
                "--score-column", "score")  # fmt: skip
    assert r.code == 0, r
    r = run_cli("train", "classifier", soft, "-o", tmp_path / "h.safetensors", *common)
    assert r.code == 0, r
    from seqtool import api

    texts = [t for t, _ in _rows(SAMPLE)[1:]]
    for name, lo, hi in (("s", 0.5, 0.6), ("h", 0.75, 1.0)):
        scores = [p for _, p, _ in api.load(tmp_path / f"{name}.safetensors").predict(texts)]
        assert lo <= sum(scores) / n <= hi, (name, scores)


def test_score_column_errors(tmp_path):
    out = tmp_path / "m.safetensors"
    base = ["train", "classifier", "-o", out, *TINY, "--tokenizer", "char", "--steps", "1"]
    bad = _soft_table(tmp_path / "bad.csv", ["0.9", "0.8", "1.7", "0.9"])
    r = run_cli(*base, bad, "--score-column", "score")
    assert r.code == 2 and "bad.csv:4:" in r.err and "1.7" in r.err, r
    r = run_cli(*base, SAMPLE, "--score-column", "score")
    assert r.code == 2 and "no training file has that column" in r.err, r
    assert not out.exists()


# -- inputs are read as what they are (issue 16, item 3) -------------------------------------

REVIEWS = 'id,review\n1,"great, lovely film"\n2,a boring mess\n'


def test_stdin_with_a_table_option_is_a_table(tiny_clf, tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text(REVIEWS)
    from_file = run_cli("classify", "-m", tiny_clf, src, "--text-column", "review")
    # before: the CSV was read as text lines and its header labelled as a text
    piped = run_cli("classify", "-m", tiny_clf, "-", "--text-column", "review", stdin=REVIEWS)
    assert piped.code == 0 and piped.out == from_file.out, piped
    rows = list(csv.reader(io.StringIO(piped.out)))
    assert rows[0] == ["id", "review", "label", "score"] and len(rows) == 3
    labels = [r[2] for r in rows[1:]]
    # TSV and JSONL are told from the first line
    tsv = "id\treview\n1\tgreat, lovely film\n2\ta boring mess\n"
    r = run_cli("classify", "-m", tiny_clf, "--text-column", "review", stdin=tsv)
    assert r.out.splitlines()[0] == "id\treview\tlabel\tscore"
    assert [x.split("\t")[2] for x in r.out.splitlines()[1:]] == labels
    jsonl = '{"review": "great, lovely film"}\n{"review": "a boring mess"}\n'
    r = run_cli("classify", "-m", tiny_clf, "--text-column", "review", stdin=jsonl)
    assert [json.loads(x)["label"] for x in r.out.splitlines()] == labels
    # --format csv needs a table: on stdin it makes one too
    r = run_cli("classify", "-m", tiny_clf, "--format", "csv", stdin="text\na boring mess\n")
    assert r.code == 0 and r.out.splitlines()[0] == "text,label,score", r
    # without a table option stdin is text lines, as documented
    r = run_cli("classify", "-m", tiny_clf, stdin="text\na boring mess\n")
    assert r.code == 0 and len(r.out.splitlines()) == 2


def test_classify_options_that_cannot_apply_are_errors(tiny_clf, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("a boring mess\n")
    r = run_cli("classify", "-m", tiny_clf, lines, "--text-column", "review")
    _one_line_error(r, "--text-column", "text lines", "lines.txt", "--input-format")
    args = ("classify", "-m", tiny_clf, "--input-format", "text", "--text-column", "review")
    _one_line_error(run_cli(*args, stdin="x\n"), "--text-column", "--input-format text")
    # a table read from stdin without the column names its columns and the way out
    r = run_cli("classify", "-m", tiny_clf, "--text-column", "review", stdin="id,text\n1,x\n")
    _one_line_error(r, "<stdin>", "'review'", "'id'", "'text'", "--input-format")
    _one_line_error(run_cli("classify", "-m", tiny_clf, tmp_path), f"{tmp_path}: is a directory")
    r = run_cli("classify", "-m", tiny_clf, "--encoding-errors", "bogus", stdin="x\n")
    _one_line_error(r, "--encoding-errors", "bogus")


def test_encoding_errors_applies_to_tables(tiny_clf, tmp_path):
    # before: tables were read as strict UTF-8 whatever --encoding-errors said
    src = tmp_path / "bad.csv"
    src.write_bytes(b"text\nfine \xff film\n")
    _one_line_error(run_cli("classify", "-m", tiny_clf, src), f"{src}:2", "UTF-8")
    r = run_cli("classify", "-m", tiny_clf, src, "--encoding-errors", "replace")
    assert r.code == 0 and "fine \ufffd film" in r.out, r
