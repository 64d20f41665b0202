"""hf:NAME[:CONFIG][@SPLIT]: Hugging Face datasets by name, on local dataset folders only
(no network in tests): streamed to a local copy, ClassLabel ints as names, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, TINY, run_cli

from seqtool.data import hub, tabular
from seqtool.errors import SeqtoolError

GOOD = ["a wonderful film", "great acting and a lovely story", "superb , moving and fun"]
BAD = ["a dull boring film", "awful acting and a weak story", "tedious , bland and messy"]


def _parquet_folder(path, splits, features, rows_of):
    """A dataset folder as the hub lays it out: data/SPLIT-00000-of-00001.parquet, the
    features (ClassLabel included) in the parquet schema's metadata."""
    import datasets

    (path / "data").mkdir(parents=True)
    for split in splits:
        ds = datasets.Dataset.from_dict(rows_of(split), features=features)
        ds.to_parquet(str(path / "data" / f"{split}-00000-of-00001.parquet"))
    return path


@pytest.fixture(scope="module")
def sst(tmp_path_factory):
    """A tiny SST-2-like dataset: `sentence` and a ClassLabel `label` (0 negative, 1 positive)."""
    import datasets

    features = datasets.Features(
        {
            "idx": datasets.Value("int32"),
            "sentence": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["negative", "positive"]),
        }
    )

    def rows(split):
        n = {"train": 12, "validation": 4, "test": 6}[split]
        texts = [(BAD if i % 2 == 0 else GOOD)[i % 3] for i in range(n)]
        return {"idx": list(range(n)), "sentence": texts, "label": [i % 2 for i in range(n)]}

    folder = tmp_path_factory.mktemp("hf") / "sst"
    return _parquet_folder(folder, ("train", "validation", "test"), features, rows)


def test_spec_parsing():
    s = hub.parse("hf:glue:sst2@validation")
    assert (s.name, s.config, s.split) == ("glue", "sst2", "validation")
    s = hub.parse("hf://datasets/stanfordnlp/imdb@train")
    assert (s.name, s.config, s.split) == ("stanfordnlp/imdb", None, "train")
    assert hub.parse("hf:bentrevett/multi30k").split is None
    with pytest.raises(SeqtoolError, match="expected hf:NAME"):
        hub.parse("hf:@train")


def test_classlabel_ints_become_names(sst):
    table = tabular.read_labelled(f"hf:{sst}@train", "sentence")
    assert table.path == f"hf:{sst}@train"  # errors name the dataset, not a temp file
    assert table.labels == ["negative", "positive"] * 6
    assert [t for c in table.iter_texts() for t in c][:2] == [BAD[0], GOOD[1]]


def test_classify_streams_labels_of_a_dataset_split(sst):
    r = run_cli("classify", f"hf:{sst}@test", "--text-column", "sentence", "--device", "cpu")
    assert r.code == 0, r
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 6
    assert [x["sentence"] for x in rows] == [(BAD if i % 2 == 0 else GOOD)[i % 3] for i in range(6)]
    # the gold label arrives as its name; the prediction is added beside it
    assert {x["label"] for x in rows} == {"negative", "positive"}
    assert all(x["predicted_label"] in ("negative", "positive") for x in rows)


def test_train_and_eval_a_classifier_on_dataset_splits(sst, tmp_path):
    out = tmp_path / "m.safetensors"
    r = run_cli(
        "train", "classifier", f"hf:{sst}@train", "--dev", f"hf:{sst}@validation",
        "--text-column", "sentence", "--tokenizer", "char", "--steps", "4", "-o", out, *TINY,
    )  # fmt: skip
    assert r.code == 0, r
    from seqtool import checkpoint

    assert checkpoint.read_header(out).json("labels") == ["negative", "positive"]
    r = run_cli("eval", out, f"hf:{sst}@test", "--format", "json", "--device", "cpu")
    assert r.code == 0, r
    assert 0.0 <= json.loads(r.out)["accuracy"] <= 1.0


def test_a_missing_split_names_the_splits_that_exist(sst):
    r = run_cli("classify", f"hf:{sst}@dev", "--text-column", "sentence")
    assert r.code == 2
    assert "no split 'dev'" in r.err and "train, validation, test" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_several_splits_and_none_named_is_an_error(sst):
    r = run_cli("classify", f"hf:{sst}", "--text-column", "sentence")
    assert r.code == 2 and "several splits (train, validation, test)" in r.err


def test_a_missing_dataset_folder_is_one_line(tmp_path):
    r = run_cli("classify", f"hf:{tmp_path}/nope@test", "--text-column", "sentence")
    assert r.code == 2 and "no such dataset folder" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_an_unreachable_hub_is_one_line(tmp_path):
    """A hub id with the hub unreachable (offline mode: no network is tried)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "hf")  # an empty cache: nothing to fall back on
    p = subprocess.run(
        [sys.executable, "-m", "seqtool", "classify", "hf:someone/no-such-dataset@test"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "hf:someone/no-such-dataset@test: the Hugging Face Hub is not reachable" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_word_lists_become_conllu_for_the_tagger(tmp_path):
    import datasets

    upos = ["DET", "NOUN", "VERB", "PUNCT"]
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "upos": datasets.Sequence(datasets.ClassLabel(names=upos)),
        }
    )

    def rows(split):
        return {"text": ["The dog runs ."], "tokens": [["The", "dog", "runs", "."]],
                "upos": [[0, 1, 2, 3]]}  # fmt: skip

    folder = _parquet_folder(tmp_path / "ud", ("train",), features, rows)
    copy = hub.local_copy(f"hf:{folder}@train")
    assert copy.suffix == ".conllu"
    lines = copy.read_text().splitlines()
    assert lines[0] == "# text = The dog runs ."
    assert lines[2].split("\t")[:4] == ["2", "dog", "_", "NOUN"]
    r = run_cli("tag", f"hf:{folder}@train", "--format", "tsv", "--device", "cpu")
    assert r.code == 0, r
    assert [ln.split("\t")[0] for ln in r.out.split("\n\n")[0].splitlines()] == [
        "The", "dog", "runs", ".",
    ]  # fmt: skip


def test_two_text_columns_become_pairs_for_the_translator(tmp_path):
    import datasets

    features = datasets.Features({"en": datasets.Value("string"), "de": datasets.Value("string")})

    def rows(split):
        return {"en": ["A dog .", "Two men\tsit ."], "de": ["Ein Hund .", "Zwei Männer sitzen ."]}

    folder = _parquet_folder(tmp_path / "m30k", ("test",), features, rows)
    copy = hub.local_copy(f"hf:{folder}@test")
    assert copy.read_text().splitlines() == [
        "A dog .\tEin Hund .",
        "Two men sit .\tZwei Männer sitzen .",
    ]
    r = run_cli("translate", f"hf:{folder}@test", "--beam", "1", "--device", "cpu")
    assert r.code == 0, r
    assert len(r.out.splitlines()) == 2  # the source column only


def test_one_text_column_is_plain_text(tmp_path):
    import datasets

    features = datasets.Features({"text": datasets.Value("string")})
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"

    def rows(split):
        return {"text": [text]}

    folder = _parquet_folder(tmp_path / "tiny", ("train",), features, rows)
    assert hub.local_copy(f"hf:{folder}@train").read_text() == text
    tok = tmp_path / "tok.model"
    r = run_cli("tokenize", "train", f"hf:{folder}@train", "--model-type", "char", "-o", tok)
    assert r.code == 0, r
    r = run_cli("tokenize", "encode", "-m", tok, f"hf:{folder}@train")
    assert r.code == 0 and len(r.out.splitlines()) == 2, r


def test_tagger_translator_and_lm_train_on_dataset_splits(tmp_path):
    """Every task trains on hf: splits (the local copy's format decides how it is read)."""
    import datasets

    words = datasets.Sequence(datasets.Value("string"))
    ud = _parquet_folder(
        tmp_path / "ud", ("train", "validation"),
        datasets.Features({"tokens": words, "upos": datasets.Sequence(datasets.ClassLabel(
            names=["DET", "NOUN", "VERB", "PUNCT"]))}),
        lambda s: {"tokens": [["The", "dog", "runs", "."], ["A", "cat", "naps", "."]] * 3,
                   "upos": [[0, 1, 2, 3]] * 6},
    )  # fmt: skip
    pairs = _parquet_folder(
        tmp_path / "pairs", ("train", "validation"),
        datasets.Features({"en": datasets.Value("string"), "de": datasets.Value("string")}),
        lambda s: {"en": ["A dog runs .", "A cat naps ."] * 4, "de": ["Ein Hund rennt .", "Eine Katze döst ."] * 4},
    )  # fmt: skip
    text = (ROOT / "corpora" / "play-sample.txt").read_text()
    lm = _parquet_folder(
        tmp_path / "lm", ("train", "validation"),
        datasets.Features({"text": datasets.Value("string")}), lambda s: {"text": [text]},
    )  # fmt: skip
    for task, folder, extra in (
        ("tagger", ud, []),
        ("translator", pairs, ["--tokenizer", "char"]),
        ("lm", lm, []),
    ):
        out = tmp_path / f"{task}.safetensors"
        r = run_cli(
            "train", task, f"hf:{folder}@train", "--dev", f"hf:{folder}@validation",
            "--steps", "2", "-o", out, *TINY, *extra,
        )  # fmt: skip
        assert r.code == 0, (task, r)
        r = run_cli("eval", out, f"hf:{folder}@validation", "--format", "json")
        assert r.code == 0, (task, r)


def test_local_parquet_splits_read_in_record_batches_as_datasets_reads_them(sst):
    """Local parquet splits go through pyarrow's record batches (bounded by a batch, not the
    file; docs/benchmarks.md), row for row what `datasets`' own streaming loop gives."""
    from seqtool.data import hub

    spec = hub.parse(f"hf:{sst}@test")
    ds = hub.open_split(spec)
    assert hub._local_parquet(spec, "test") == [str(sst / "data" / "test-00000-of-00001.parquet")]
    ours = list(hub.rows(spec, ds))
    theirs = [r for b in ds.iter(batch_size=7) for r in _rows_of_batch(b)]
    assert [r["sentence"] for r in ours] == [r["sentence"] for r in theirs]
    assert [r["label"] for r in ours] == [("negative", "positive")[r["label"]] for r in theirs]


def _rows_of_batch(batch: dict) -> list[dict]:
    return [dict(zip(batch, v, strict=True)) for v in zip(*batch.values(), strict=True)]
