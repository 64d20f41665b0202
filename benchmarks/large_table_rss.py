"""Peak memory of `seqtool train classifier|translator|tagger` on millions of rows.

Writes a synthetic table (a text,label CSV of 2.5 M ~125-character reviews, a TSV of 2.5 M
sentence pairs, or 500,000 CoNLL-U sentences), trains a few steps on it twice (the first run
reads and checks it (a CSV through `datasets`' Arrow cache), trains the tokenizer on a sample
and tokenizes it into seqtool's row cache; the second reuses the caches) and the same command
on its first 10,000 rows, and reports each run's peak RSS and wall time, against a plain
reference that reads the table into Python lists of strings (measured on the same file in
the same run).

    python benchmarks/large_table_rss.py                          # classifier, 2.5 M rows
    python benchmarks/large_table_rss.py --task translator
    python benchmarks/large_table_rss.py --task tagger
    python benchmarks/large_table_rss.py --rows 5000000 --tokenizer char --keep /data/big.csv

--read-only measures reading alone (classifier tables): `read_labelled` plus one pass over the
texts, on the CSV and on the same rows as an `hf:` parquet dataset folder, each run's peak RSS
and rows/s (wall, and per CPU second: steadier on a busy machine); --baseline-src DIR runs the CSV case also with the seqtool package found in DIR (an
older checkout, e.g. from `git archive`), in the same run:

    python benchmarks/large_table_rss.py --read-only --rows 1000000 --baseline-src /tmp/old
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from large_corpus_rss import peak_rss_mb  # same directory: one fork-and-measure helper

REFERENCE = """
import csv, sys
texts, labels = [], []
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
        texts.append(row["text"])
        labels.append(row["label"])
print(len(texts))
"""

REFERENCE_PAIRS = """
import sys
src, tgt = [], []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        s, _, t = line.rstrip("\\n").partition("\\t")
        src.append(s)
        tgt.append(t)
print(len(src))
"""

REFERENCE_CONLLU = """
import sys
words, tags, w, t = [], [], [], []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.strip():
            if not line.startswith("#"):
                cols = line.split("\\t")
                w.append(cols[1])
                t.append(cols[3])
        elif w:
            words.append(w)
            tags.append(t)
            w, t = [], []
print(len(words))
"""

GOOD = ["great", "wonderful", "superb", "lovely", "moving", "brilliant", "fun", "charming"]
BAD = ["awful", "boring", "dull", "weak", "messy", "tedious", "bland", "clumsy"]


def _words(rng: random.Random) -> tuple[list[str], list[float]]:
    """Made-up words and cumulative Zipf weights over them."""
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "qu", "do", "fe", "gi"]
    vocab = sorted({"".join(rng.choices(syll, k=rng.randint(1, 4))) for _ in range(20000)})
    rng.shuffle(vocab)  # frequency rank independent of spelling
    cum, total = [], 0.0
    for r in range(len(vocab)):
        total += 1 / (r + 1)
        cum.append(total)
    return vocab, cum


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """A CSV of `rows` synthetic reviews: Zipf-distributed made-up words, plus a few sentiment
    words that decide the label (so the task is learnable)."""
    rng = random.Random(seed)
    vocab, cum = _words(rng)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("text,label\n")
        for _ in range(rows):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(6, 22))
            positive = rng.random() < 0.5
            for _ in range(rng.randint(1, 2)):
                words.insert(rng.randrange(len(words) + 1), rng.choice(GOOD if positive else BAD))
            text = " ".join(words)
            if rng.random() < 0.1:  # some quoting, as real CSVs have
                text = f'"{text}, really"'
            f.write(f"{text},{'positive' if positive else 'negative'}\n")


def write_pairs(path: Path, rows: int, seed: int = 0) -> None:
    """A TSV of `rows` synthetic sentence pairs: the target spells each source word backwards
    and swaps neighbouring words (so there is something to learn)."""
    rng = random.Random(seed)
    vocab, cum = _words(rng)
    with path.open("w", encoding="utf-8") as f:
        for _ in range(rows):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(4, 18))
            out = [w[::-1] for w in words]
            for i in range(0, len(out) - 1, 2):
                out[i], out[i + 1] = out[i + 1], out[i]
            f.write(f"{' '.join(words)} .\t{' '.join(out)} .\n")


def write_conllu(path: Path, rows: int, seed: int = 0) -> None:
    """A CoNLL-U file of `rows` synthetic sentences; each made-up word has a fixed tag."""
    rng = random.Random(seed)
    vocab, cum = _words(rng)
    upos = ["NOUN", "VERB", "ADJ", "ADV", "DET", "PRON", "ADP"]
    tag = {w: upos[i % len(upos)] for i, w in enumerate(vocab)}
    with path.open("w", encoding="utf-8") as f:
        for _ in range(rows):
            words = [*rng.choices(vocab, cum_weights=cum, k=rng.randint(4, 18)), "."]
            f.write(f"# text = {' '.join(words)}\n")
            for i, w in enumerate(words, 1):
                f.write(f"{i}\t{w}\t_\t{tag.get(w, 'PUNCT')}\t_\t_\t_\t_\t_\t_\n")
            f.write("\n")


READ = """
import sys, time
from seqtool.data.tabular import read_labelled
t0, c0 = time.perf_counter(), time.process_time()
table = read_labelled(sys.argv[1])
n = sum(len(chunk) for chunk in table.iter_texts())
assert n == len(table), (n, len(table))
print(f"{n} {time.perf_counter() - t0:.3f} {time.process_time() - c0:.3f}")
"""

# The public streaming API on the same CSV, for comparison: two passes as read_labelled makes
# (texts and labels, then texts), without seqtool's per-row checks.
READ_STREAMING = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import datasets
datasets.disable_progress_bars()
features = datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("string")})
ds = datasets.load_dataset("csv", data_files=sys.argv[1], split="train", streaming=True,
                           features=features, keep_default_na=False, na_filter=False)
n = 0
for b in ds.with_format("arrow").iter(batch_size=10000):
    texts, labels = b.column("text").to_pylist(), b.column("label").to_pylist()
    n += len(texts)
for b in ds.with_format("arrow").iter(batch_size=10000):
    texts = b.column("text").to_pylist()
print(f"{n} {time.perf_counter() - t0:.3f} {time.process_time() - c0:.3f}")
"""


def to_parquet_folder(csv_path: Path, folder: Path) -> None:
    """The CSV as a local dataset folder (`folder/data/train-*.parquet`, text and a ClassLabel
    label), written a block at a time by pyarrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True, exist_ok=True)
    names = ["negative", "positive"]
    meta = {"info": {"features": {
        "text": {"dtype": "string", "_type": "Value"},
        "label": {"names": names, "_type": "ClassLabel"},
    }}}  # fmt: skip
    schema = pa.schema([("text", pa.string()), ("label", pa.int64())])
    schema = schema.with_metadata({"huggingface": json.dumps(meta)})
    reader = pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=16 << 20))
    with pq.ParquetWriter(folder / "data" / "train-00000-of-00001.parquet", schema) as w:
        for batch in reader:
            labels = pa.array([names.index(y) for y in batch.column("label").to_pylist()])
            w.write_table(pa.table([batch.column("text"), labels], schema=schema))


def read_only(big: Path, work: Path, env: dict[str, str], baseline: str | None) -> None:
    """Reading alone: peak RSS and rows/s of read_labelled + one pass over the texts."""
    runs = [("this checkout, CSV", str(big), None)]
    runs.append(("datasets streaming API, CSV (no checks)", str(big), "streaming"))
    if baseline:
        runs.insert(0, (f"{baseline}, CSV", str(big), baseline))
    folder = work / "hfdata"
    to_parquet_folder(big, folder)
    runs.append(("this checkout, hf: parquet folder", f"hf:{folder}@train", None))
    for label, data, src in runs:
        e = dict(env)
        if src and src != "streaming":
            e["PYTHONPATH"] = src
        out = work / "read.out"
        code_ = READ_STREAMING if src == "streaming" else READ
        cmd = ["sh", "-c", f'"$0" -c "$1" "$2" > {out}', sys.executable, code_, data]
        mb, wall, code = peak_rss_mb(cmd, e)
        n, secs, cpu = out.read_text().split() if code == 0 else ("0", "nan", "nan")
        rate, per_cpu = (int(n) / float(secs), int(n) / float(cpu)) if code == 0 else (0, 0)
        print(
            f"read {label}: peak RSS {mb:,.0f} MB, {rate:,.0f} rows/s ({float(secs):.1f} s "
            f"wall), {per_cpu:,.0f} rows per CPU second ({float(cpu):.1f} s CPU), exit {code}"
        )


SMALL_ROWS = 10_000
TASKS = {
    # task: (writer, suffix, rows, tokenizer, dev fraction, reference reading into lists)
    "classifier": (write_table, ".csv", 2_500_000, "unigram", "0.001", REFERENCE),
    "translator": (write_pairs, ".tsv", 2_500_000, "bpe", "0.0002", REFERENCE_PAIRS),
    "tagger": (write_conllu, ".conllu", 500_000, None, "0.001", REFERENCE_CONLLU),
}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", choices=list(TASKS), default="classifier")
    ap.add_argument("--rows", type=int, help="default: 2.5 M (tagger: 500,000 sentences)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--tokenizer", help="unigram | bpe | char (default: the task's)")
    ap.add_argument("--keep", help="write the table here and keep it")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--read-only", action="store_true", help="measure reading only (classifier)")
    ap.add_argument("--baseline-src", help="with --read-only: also read with the seqtool in DIR")
    args = ap.parse_args()
    write, suffix, rows, tokenizer, dev_fraction, reference = TASKS[args.task]
    rows, tokenizer = args.rows or rows, args.tokenizer or tokenizer
    work = Path(tempfile.mkdtemp(prefix="seqtool-table-rss-"))
    big = Path(args.keep) if args.keep else work / f"big{suffix}"
    if not big.is_file():
        t0 = time.perf_counter()
        write(big, rows)
        print(f"wrote {big} in {time.perf_counter() - t0:.0f} s")
    size_mb = big.stat().st_size / (1 << 20)
    env = {
        **os.environ,
        "SEQTOOL_CACHE": str(work / "cache"),
        "HF_DATASETS_CACHE": str(work / "hf"),  # datasets' Arrow copy of a CSV goes here
        "RSS_OUT": str(work / "rss"),
    }
    cmd = [sys.executable, "-m", "seqtool", "train", args.task, str(big)]
    cmd += ["-o", str(work / "m.safetensors"), "--steps", str(args.steps)]
    cmd += ["--tokenizer", tokenizer] if tokenizer else []  # the tagger's vocabularies are fixed
    cmd += ["--threads", "1", "--batch-size", "64"]
    cmd += ["--dev-fraction", dev_fraction, "--eval-every", str(args.steps)]
    print(f"{big.name}: {size_mb:,.0f} MB, {rows:,} rows; --tokenizer {tokenizer or '-'}")
    if args.read_only:
        if args.task != "classifier":
            ap.error("--read-only measures classifier tables")
        read_only(big, work, env, args.baseline_src)
        if not args.keep:
            big.unlink()
        shutil.rmtree(work, ignore_errors=True)
        return
    first = 0.0
    for label in ("first run (read + tokenize + cache)", "second run (caches reused)"):
        mb, wall, code = peak_rss_mb(cmd, env)
        print(
            f"seqtool train {args.task}, {label}: peak RSS {mb:,.0f} MB, {wall:.0f} s, exit {code}"
        )
        first = first or mb
    # The floor: the same command on a small slice (imports, model, optimizer, batches).
    small = work / f"small{suffix}"
    with big.open("rb") as src, small.open("wb") as dst:
        dst.writelines(itertools.islice(src, SMALL_ROWS + (suffix == ".csv")))
    mb, wall, code = peak_rss_mb([str(small) if c == str(big) else c for c in cmd], env)
    print(
        f"seqtool train {args.task}, the same command on the first {SMALL_ROWS:,} rows: "
        f"peak RSS {mb:,.0f} MB, {wall:.0f} s, exit {code}"
    )
    if not args.no_reference:
        mb, wall, code = peak_rss_mb([sys.executable, "-c", reference, str(big)], env)
        print(
            f"plain reference (the table read into Python lists of strings): peak RSS "
            f"{mb:,.0f} MB, {wall:.0f} s, exit {code}"
        )
        print(f"ratio seqtool/reference peak RSS: {first / mb:.3f}")
    if not args.keep:
        big.unlink()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
