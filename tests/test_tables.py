"""Labelled tables on disk: Arrow files read in chunks, token ids in the row cache, batches
drawn by index. The rows must be exactly what encoding Python lists gives."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY, run_cli

from seqtool.data import rows, tabular
from seqtool.errors import DataError

SAMPLE = ROOT / "corpora" / "sentiment-sample.csv"


def _write_csv(path: Path, n: int, seed: int = 0) -> list[tuple[str, str]]:
    import csv

    rng = random.Random(seed)
    words = ["good", "Bad", "film", "ΟΔΟΣ", "plot", "naïve", "a,b", 'say "hi"', "x\ty"]
    data = [
        (" ".join(rng.choices(words, k=rng.randint(1, 12))), rng.choice(["pos", "neg", "mid"]))
        for _ in range(n)
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(data)
    return data


def _tiny_classifier(texts: list[str], lowercase: bool = False, max_length: int = 0):
    from seqtool import tokenizers
    from seqtool.config import BackboneConfig
    from seqtool.tasks.classifier import Classifier, ClassifierConfig

    tok = tokenizers.train(texts[:5], "char")  # leaves characters out: <unk> must round-trip
    cfg = ClassifierConfig(
        backbone=BackboneConfig(vocab_size=tok.vocab_size, embedding_dim=10, hidden_size=7),
        num_labels=3,
        lowercase=lowercase,
        max_length=max_length,
    )
    return Classifier(cfg, tok, ["mid", "neg", "pos"])


def test_table_is_read_in_chunks_from_the_file(tmp_path, monkeypatch):
    data = _write_csv(tmp_path / "t.csv", 57)
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 10)
    table = tabular.read_labelled(tmp_path / "t.csv")
    assert isinstance(table.source, tabular.TableFile)  # streamed from the file, not held
    chunks = list(table.iter_texts(rows=10))
    assert [len(c) for c in chunks] == [10] * 5 + [7]
    assert [t for c in chunks for t in c] == [t for t, _ in data]
    assert table.labels == [y for _, y in data]
    assert table.codes.dtype == np.int32 and table.chars == sum(len(t) for t, _ in data)


def test_jsonl_values_are_decoded_as_datasets_would(tmp_path):
    import datasets

    f = tmp_path / "mixed.jsonl"
    lines = [
        {"text": "good film", "label": True},
        {"text": 42, "label": 0.5},
        {"text": [1, "x"], "label": {"a": 1}},
    ]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    table = tabular.read_labelled(f)
    ds = datasets.load_dataset("json", data_files=str(f), split="train")
    assert [t for c in table.iter_texts() for t in c] == [str(t) for t in ds["text"]]
    assert table.labels == [str(y).strip() for y in ds["label"]]


def test_empty_text_deep_in_the_table_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 8)
    f = tmp_path / "t.csv"
    data = _write_csv(f, 40)
    lines = f.read_text().splitlines()
    lines[31] = '"   ",pos'  # row 30, line 32
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"t\.csv:32.*empty text"):
        tabular.read_labelled(f)
    assert len(data) == 40


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_bytes_that_are_not_utf8_follow_encoding_errors(tmp_path, fmt):
    """strict names the line and column of the bad byte; replace and ignore read the table
    (from a decoded copy) and later errors still name the user's file and line."""
    rows_ = [("good one", "pos"), ("bad \xff byte", "neg"), ("fine", "pos")]
    f = tmp_path / f"t.{fmt}"
    if fmt == "jsonl":
        lines = [json.dumps({"text": t, "label": y}) for t, y in rows_]
        f.write_bytes(
            "\n".join(lines).replace("\\u00ff", "\udcff").encode("utf-8", "surrogateescape") + b"\n"
        )
    else:
        sep = "," if fmt == "csv" else "\t"
        body = "".join(f"{t}{sep}{y}\n" for t, y in rows_)
        f.write_bytes(f"text{sep}label\n{body}".encode("latin-1"))
    with pytest.raises(DataError, match=rf"t\.{fmt}:\d+:\d+: invalid UTF-8"):
        tabular.read_labelled(f)
    table = tabular.read_labelled(f, encoding_errors="replace")
    texts = [t for chunk in table.iter_texts() for t in chunk]
    assert texts == ["good one", "bad \ufffd byte", "fine"] and table.path == str(f)
    table = tabular.read_labelled(f, encoding_errors="ignore")
    assert [t for chunk in table.iter_texts() for t in chunk][1] == "bad  byte"
    g = tmp_path / f"u.{fmt}"
    g.write_bytes(f.read_bytes().replace(b"fine", b" "))  # an empty text on the last row
    with pytest.raises(DataError, match=rf"u\.{fmt}:\d+.*empty text"):
        tabular.read_labelled(g, encoding_errors="replace")


def test_eval_of_a_classifier_follows_encoding_errors(tmp_path):
    f = tmp_path / "dev.csv"
    f.write_bytes(b"text,label\ngreat \xff film,positive\nawful,negative\n")
    model = ROOT / "checkpoints" / "sentiment.safetensors"
    r = run_cli("eval", model, f, "--format", "json")
    assert r.code == 2 and "dev.csv:2:7: invalid UTF-8" in r.err, r
    r = run_cli("eval", model, f, "--format", "json", "--encoding-errors", "replace")
    assert r.code == 0, r
    assert json.loads(r.out)["examples"] == 2


@pytest.mark.parametrize("lowercase,max_length", [(False, 0), (True, 8)])
def test_cached_rows_equal_encoding_python_lists(tmp_path, monkeypatch, lowercase, max_length):
    from seqtool.data.labelled import encode_labelled

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tabular, "CHUNK_ROWS", 7)
    data = _write_csv(tmp_path / "t.csv", 50)
    texts = [t for t, _ in data]
    model = _tiny_classifier(texts, lowercase, max_length)
    table = tabular.read_labelled(tmp_path / "t.csv")
    enc = encode_labelled(model, table)
    assert isinstance(enc.ids, rows.Rows)
    assert [r.tolist() for r in enc.ids] == model.encode(texts)  # the in-memory path
    assert enc.lengths.tolist() == [len(x) for x in model.encode(texts)]
    assert enc.labels.tolist() == [model.labels.index(y) for _, y in data]
    assert len(list((tmp_path / "cache" / "rows").glob("*.ids"))) == 1
    # A second encoding reads the cache instead of tokenizing again.
    monkeypatch.setattr(model, "encode", lambda texts: pytest.fail("tokenized twice"))
    again = encode_labelled(model, tabular.read_labelled(tmp_path / "t.csv"))
    assert [r.tolist() for r in again.ids] == [r.tolist() for r in enc.ids]


def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path))
    built = []

    def build(w):
        built.append(1)
        w.add([[1, 2, 3], [], [4]])

    store = rows.cached("k", 10, build)
    assert [store.row(i).tolist() for i in range(3)] == [[1, 2, 3], [], [4]]
    (tmp_path / "rows" / "k.ids").write_bytes(b"\0\0")  # truncated
    store = rows.cached("k", 10, build)
    assert len(built) == 2 and store.row(0).tolist() == [1, 2, 3]
    assert rows.cached("k", 10, build).row(2).tolist() == [4] and len(built) == 2


@pytest.mark.parametrize("in_memory", [0, 1 << 20])  # pread from disk, or slices of an array
def test_rows_over_several_stores_select_in_order(tmp_path, monkeypatch, in_memory):
    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path))
    monkeypatch.setattr(rows, "IN_MEMORY_BYTES", in_memory)
    a = rows.cached("a", 99, lambda w: w.add([[1], [2, 2]]))
    b = rows.cached("b", 70000, lambda w: w.add([[3, 3, 3], [40000]]))  # int32 ids
    r = rows.Rows([a, b]).select(np.array([3, 0, 2]))
    assert (a._ids is None) == (in_memory == 0)
    assert [x.tolist() for x in r] == [[40000], [1], [3, 3, 3]]
    assert all(x.flags.writeable for x in r)  # torch takes them without a warning
    assert r.lengths.tolist() == [1, 1, 3]
    assert [x.tolist() for x in r.select(np.array([2, 0]))] == [[3, 3, 3], [40000]]


def _old_bucket_batches(lengths, max_tokens, batch_size, shuffle, seed, epoch):
    """The list-based sampler this replaced (kept to pin the batches down exactly)."""
    n = len(lengths)
    if n == 0:
        return []
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
    pool = max(batch_size, 1) * 100
    batches = []
    for s in range(0, n, pool):
        chunk = sorted(order[s : s + pool], key=lambda i: lengths[i])
        cur, longest = [], 0
        for i in chunk:
            new_longest = max(longest, lengths[i])
            too_big = (max_tokens > 0 and new_longest * (len(cur) + 1) > max_tokens) or (
                max_tokens <= 0 and len(cur) >= batch_size
            )
            if cur and too_big:
                batches.append(cur)
                cur, new_longest = [], lengths[i]
            cur.append(i)
            longest = new_longest
        if cur:
            batches.append(cur)
    if shuffle:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def test_numpy_batches_equal_the_list_sampler():
    from seqtool.data.batching import bucket_batches

    rng = random.Random(0)
    for t in range(60):
        n = rng.randint(0, 2500)
        lengths = [rng.randint(0, 50) for _ in range(n)]
        args = (rng.choice([0, 40, 300]), rng.choice([0, 1, 5, 32]), rng.random() < 0.7, t, 3)
        got = [b.tolist() for b in bucket_batches(np.array(lengths, np.int32), *args)]
        assert got == _old_bucket_batches(lengths, *args)


def test_tokenizer_learns_from_every_row_or_an_even_sample(tmp_path):
    from seqtool import tokenizers
    from seqtool.data.labelled import build_tokenizer

    data = _write_csv(tmp_path / "t.csv", 400)
    table = tabular.read_labelled(tmp_path / "t.csv")
    order = np.random.default_rng(0).permutation(len(data))
    texts = [data[i][0] for i in order]
    full = build_tokenizer("bpe", [table], order, True, 300, table.chars)
    assert full.to_bytes() == tokenizers.build("bpe", [t.lower() for t in texts], 300).to_bytes()
    stride = -(-table.chars // 2000)
    part = build_tokenizer("bpe", [table], order, False, 300, 2000)
    assert part.to_bytes() == tokenizers.build("bpe", texts[::stride], 300).to_bytes()
    chars = build_tokenizer("char", [table], order[:10], True, 0, 1)  # chars: every row
    assert chars.to_bytes() == tokenizers.train([t.lower() for t in texts[:10]], "char").to_bytes()


def test_training_holds_out_rows_and_batches_from_the_cache(tmp_path, monkeypatch):
    from seqtool.config import TrainConfig
    from seqtool.tasks.base import Setup
    from seqtool.tasks.classifier import Classifier, ClassifierOptions

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    data = _write_csv(tmp_path / "t.csv", 200)
    cfg = TrainConfig(batch_size=16, seed=4)
    opts = ClassifierOptions(
        files=[str(tmp_path / "t.csv"), str(SAMPLE)], dev_fraction=0.1, tokenizer="char"
    )
    model, source, dev = Classifier.prepare(
        Setup(opts, {}, {"embedding_dim": 10, "hidden_size": 7}, cfg)
    )
    import csv

    with SAMPLE.open(newline="") as f:
        data += [(r["text"], r["label"]) for r in csv.DictReader(f)]
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(4)).tolist()
    held, kept = perm[:23], perm[23:]
    assert len(dev.ids) == 23 and [r.tolist() for r in dev.ids] == model.encode(
        [data[i][0] for i in held]
    )
    assert [model.labels[y] for y in dev.labels] == [data[i][1] for i in held]
    batch = source.next_batch()
    first = source._make(0)[0].tolist()
    want = model.encode([data[kept[i]][0] for i in first])
    assert batch["lengths"].tolist() == [len(x) for x in want]
    assert batch["labels"].tolist() == [model.labels.index(data[kept[i]][1]) for i in first]
    assert batch["labels"].dtype == torch.long


def test_train_cli_on_a_table_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    _write_csv(tmp_path / "t.csv", 300)
    args = ["train", "classifier", tmp_path / "t.csv", *TINY, "--tokenizer", "char"]
    r = run_cli(*args, "-o", tmp_path / "a.safetensors", "--steps", "3")
    assert r.code == 0, r
    entries = sorted((tmp_path / "cache" / "rows").glob("*.ids"))
    assert len(entries) == 1
    r = run_cli(*args, "-o", tmp_path / "b.safetensors", "--steps", "3")
    assert r.code == 0, r
    assert sorted((tmp_path / "cache" / "rows").glob("*.ids")) == entries


@pytest.mark.slow
def test_a_million_row_table_trains_in_bounded_memory(tmp_path):
    """1 M rows (~70 MB of CSV): peak RSS of a short training run stays far below what the
    texts alone take as Python lists, and the second run reuses both caches."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from large_table_rss import peak_rss_mb, write_table

    big = tmp_path / "big.csv"
    write_table(big, 1_000_000)
    env = {
        "SEQTOOL_CACHE": str(tmp_path / "cache"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf"),
        "OMP_NUM_THREADS": "1",
        "RSS_OUT": str(tmp_path / "rss"),
    }
    cmd = [sys.executable, "-m", "seqtool", "train", "classifier", str(big), *map(str, TINY)]
    cmd += ["-o", str(tmp_path / "m.safetensors"), "--steps", "3", "--tokenizer", "char"]
    for _ in range(2):
        peak_mb, _, code = peak_rss_mb(cmd, {**os.environ, **env})
        assert code == 0 and peak_mb < 900, peak_mb


# -- translator pairs ------------------------------------------------------------------------------

PAIRS = ROOT / "corpora" / "translation-sample.tsv"


def test_pair_file_streams_what_read_pairs_reads(tmp_path, monkeypatch):
    from seqtool.data import parallel

    monkeypatch.setattr(parallel, "CHUNK_PAIRS", 7)
    f = tmp_path / "p.tsv"
    f.write_text("a b\tx\ty\n\n  \nc\t\n\td e\n" + PAIRS.read_text())
    src, tgt = parallel.read_pairs(str(f))
    pf = parallel.PairFile(str(f))
    chunks = list(pf.iter_chunks())
    assert [len(s) for s, _ in chunks[:-1]] == [7] * (len(chunks) - 1)
    assert [x for s, _ in chunks for x in s] == src and [x for _, t in chunks for x in t] == tgt
    assert pf.nonempty.tolist() == [bool(s) and bool(t) for s, t in zip(src, tgt, strict=True)]
    assert pf.pairs(3, 9, 2) == (src[3:9:2], tgt[3:9:2])
    assert tgt[0] == "x y" and pf.chars == sum(map(len, src + tgt))


def test_pair_file_spools_stdin_and_names_it(tmp_path, monkeypatch):
    import io

    from seqtool.data import parallel

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PAIRS.read_bytes())))
    pf = parallel.PairFile("-")
    spooled = pf.files[0]
    assert list(pf.iter_pairs_one_by_one()) == list(parallel.iter_tsv(str(PAIRS)))
    pf.close()
    assert not Path(spooled).exists()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a\tb\nno tab\n")))
    with pytest.raises(DataError, match="<stdin>:2"):
        parallel.PairFile("-")


@pytest.mark.parametrize("n_src,n_tgt", [(3, 2), (2, 4)])
def test_unequal_parallel_files_give_both_counts(tmp_path, n_src, n_tgt):
    from seqtool.data import parallel
    from seqtool.errors import SeqtoolError

    (tmp_path / "s").write_text("s\n" * n_src)
    (tmp_path / "t").write_text("t\n" * n_tgt)
    with pytest.raises(SeqtoolError, match=f"has {n_src} lines but .* has {n_tgt};"):
        parallel.PairFile(source=str(tmp_path / "s"), target=str(tmp_path / "t"))


def test_translator_rows_equal_encoding_python_lists(tmp_path, monkeypatch):
    from seqtool.config import TrainConfig
    from seqtool.data import pairs
    from seqtool.data.parallel import read_pairs
    from seqtool.tasks.base import Setup
    from seqtool.tasks.translator import Translator

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(batch_size=8, seed=2)
    bb = {"embedding_dim": 10, "hidden_size": 7}
    opts = pairs.TranslatorOptions(files=[str(PAIRS)], tokenizer="char", max_length=30)
    model, source, _ = Translator.prepare(Setup(opts, {}, bb, cfg))
    src, tgt = read_pairs(str(PAIRS))
    s_ids, t_ids = pairs.encode_pairs(model.tokenizer, model.target_tokenizer, src, tgt)
    assert s_ids == [model.encode_source(s) for s in src]
    keep = [i for i in range(len(src)) if len(s_ids[i]) <= 30 and len(t_ids[i]) < 30]
    assert 0 < len(keep) < len(src)
    batch = source.next_batch()
    first = source._make(0)[0].tolist()
    want = pairs.PairCollate([s_ids[i] for i in keep], [t_ids[i] for i in keep])(first)
    assert batch.keys() == want.keys()
    for k in want:
        assert torch.equal(batch[k], want[k]), k
    assert len(list((tmp_path / "cache" / "rows").glob("*.ids"))) == 2  # source and target


# -- tagger sentences ------------------------------------------------------------------------------

CONLLU = ROOT / "corpora" / "pos-sample.conllu"


def test_tagger_batches_from_the_cache_equal_encoding_words(tmp_path, monkeypatch):
    from collections import Counter

    from seqtool.config import TrainConfig
    from seqtool.data.batching import pad
    from seqtool.data.conllu import read_conllu_file
    from seqtool.data.split import dev_count
    from seqtool.data.tagging import normalize
    from seqtool.tasks.base import Setup
    from seqtool.tasks.tagger import Tagger, TaggerOptions

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(batch_size=4, seed=3)
    bb = {"embedding_dim": 10, "hidden_size": 7}
    # six copies: enough sentences for a dev set that can rank checkpoints (data/split.py)
    opts = TaggerOptions(files=[str(CONLLU)] * 6, dev_fraction=0.2)
    model, source, dev = Tagger.prepare(Setup(opts, {}, bb, cfg))
    sents = list(read_conllu_file(str(CONLLU))) * 6
    cut = len(sents) - dev_count(len(sents), 0.2)
    assert cut < len(sents)
    train = sents[:cut]
    assert dev.words == [s.words for s in sents[cut:]]
    counts = Counter(normalize(w) for s in train for w in s.words)
    assert model.words == ["<pad>", "<unk>"] + sorted(counts, key=lambda w: (-counts[w], w))
    assert model.tags == sorted({t for s in train for t in s.tags if t is not None})
    for _ in range(3):
        idx = source._make(source.epoch)[source.pos].tolist()
        batch = source.next_batch()
        want = model.encode([train[i].words for i in idx])
        gold = [[model.tag_index.get(t, -100) for t in train[i].tags] for i in idx]
        want["tags"], _ = pad(gold, -100)
        assert list(batch) == list(want)
        for k in want:
            assert torch.equal(batch[k], want[k]), k
    assert len(list((tmp_path / "cache" / "rows").glob("*.ids"))) == 4


def test_sniff_format_of_a_nameless_table():
    assert tabular.sniff_format(b'{"text": "a, b\\tc"}\n') == "jsonl"
    assert tabular.sniff_format(b"\xef\xbb\xbf  {}\n") == "jsonl"  # a BOM and spaces first
    assert tabular.sniff_format(b"id\ttext, with a comma\n") == "tsv"
    assert tabular.sniff_format(b"id,text\n") == "csv"
    assert tabular.sniff_format(b"") == "csv"  # empty: the CSV reader names the problem
