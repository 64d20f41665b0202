"""Hugging Face datasets by name: `hf:NAME[:CONFIG][@SPLIT]` wherever a data file is taken.

NAME is what `datasets.load_dataset` takes: a hub id (`stanfordnlp/sst2`) or a local dataset
folder (parquet/csv/json files, or `save_to_disk` output). The split is read in streaming mode
(`IterableDataset`, the library's public API for bounded memory) and written, a batch at a
time, to a temporary local file in the format seqtool's readers take, so every command reads
a hub dataset exactly as it reads a file (same checks, same caches, same error lines):

- a `tokens` (or `words`) column of word lists: CoNLL-U (tagger, segmenter);
- a `translation` column, or exactly two text columns (`en`, `de`): `source<TAB>target`;
- one text column and nothing else: plain text (language models, tokenizers);
- anything else: JSONL records, every column kept (classifier tables).

Integer `ClassLabel` values (and lists of them, e.g. UPOS) become their names. The copy lives
in a temporary folder removed when the process ends; rows are named `hf:...:ROW` in errors.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool.errors import DataError, SeqtoolError

PREFIX = "hf:"
BATCH_ROWS = 1000  # rows decoded from Arrow at a time
_copies: dict[str, Path] = {}  # spec -> this process's local copy
_tmp: Path | None = None


def is_hub(path: object) -> bool:
    return isinstance(path, str) and path.startswith(PREFIX)


@dataclass(frozen=True)
class HubSpec:
    """A parsed `hf:NAME[:CONFIG][@SPLIT]`."""

    text: str
    name: str
    config: str | None
    split: str | None

    @property
    def local(self) -> bool:
        """A local dataset folder rather than a hub id."""
        return self.name.startswith((".", "/", "~")) or Path(self.name).expanduser().exists()


def parse(spec: str) -> HubSpec:
    """`hf:NAME[:CONFIG][@SPLIT]` (also `hf://datasets/NAME...`, the hub's URL form)."""
    rest = spec[len(PREFIX) :]
    if rest.startswith("//datasets/"):
        rest = rest[len("//datasets/") :]
    rest, at, split = rest.rpartition("@") if "@" in rest else (rest, "", "")
    name, _, config = rest.partition(":")
    if not name or (at and not split):
        raise SeqtoolError(
            f"{spec}: expected hf:NAME[:CONFIG][@SPLIT], e.g. hf:stanfordnlp/sst2@train"
        )
    return HubSpec(spec, name, config or None, split or None)


def _datasets() -> Any:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def _splits(spec: HubSpec) -> list[str] | None:
    try:
        return list(_datasets().get_dataset_split_names(_path(spec), spec.config))
    except Exception:
        return None


def _path(spec: HubSpec) -> str:
    return str(Path(spec.name).expanduser()) if spec.local else spec.name


def open_split(spec: HubSpec) -> Any:
    """The split as a streaming IterableDataset; one clear SeqtoolError when it cannot be."""
    if spec.name.startswith((".", "/", "~")) and not Path(spec.name).expanduser().exists():
        raise SeqtoolError(f"{spec.text}: no such dataset folder {spec.name}")
    if spec.local:
        offline_env()  # a folder never needs the network (set before datasets is imported)
    datasets = _datasets()
    split = spec.split
    if split is None:
        names = _splits(spec)
        if names is not None and len(names) == 1:
            split = names[0]
        elif names:
            raise SeqtoolError(
                f"{spec.text}: the dataset has several splits ({', '.join(names)}); "
                f"name one: {spec.text}@{names[0]}"
            )
        else:
            split = "train"
    try:
        return datasets.load_dataset(_path(spec), spec.config, split=split, streaming=True)
    except Exception as e:  # the library's errors vary by version: say what it means
        raise SeqtoolError(_failure(spec, split, e)) from None


def _failure(spec: HubSpec, split: str, e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    kind = type(e).__name__
    if "split" in msg.lower():
        names = _splits(spec)
        there = f"; the splits are: {', '.join(names)}" if names else ""
        return f"{spec.text}: no split {split!r}{there}"
    if "config" in msg.lower() and ("available" in msg.lower() or "not found" in msg.lower()):
        return f"{spec.text}: {msg}"
    if not spec.local and (
        kind in ("ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError")
        or "reach" in msg
        or "offline" in msg.lower()
    ):
        return (
            f"{spec.text}: the Hugging Face Hub is not reachable (offline?) and "
            f"{spec.name} is not in the local datasets cache"
        )
    if kind in ("DatasetNotFoundError", "FileNotFoundError", "EmptyDatasetError"):
        where = "folder holds no data files" if spec.local else "does not exist on the Hub"
        return f"{spec.text}: the dataset {where} ({msg})"
    return f"{spec.text}: cannot load the dataset ({kind}: {msg})"


def _namer(feature: Any) -> Callable[[Any], Any]:
    """ClassLabel ints -> names (also inside lists); anything else unchanged."""
    inner = getattr(feature, "feature", None)  # Sequence/List of something
    if hasattr(feature, "int2str") and hasattr(feature, "names"):
        names = list(feature.names)
        return lambda v: names[v] if isinstance(v, int) and 0 <= v < len(names) else v
    if inner is not None and hasattr(inner, "int2str"):
        one = _namer(inner)
        return lambda v: [one(x) for x in v] if isinstance(v, list) else v
    return lambda v: v


def _is_text(feature: Any) -> bool:
    return getattr(feature, "dtype", None) in ("string", "large_string")


def column_kinds(features: Any, first: dict[str, Any] | None) -> dict[str, str]:
    """column -> text | words (a list of strings) | other, from the features or, for files
    without a schema, from the first row."""
    if features is not None:
        return {
            c: "text"
            if _is_text(f)
            else "words"
            if _is_text(getattr(f, "feature", None))
            else "other"
            for c, f in features.items()
        }
    kinds = {}
    for c, v in (first or {}).items():
        words = isinstance(v, list) and all(isinstance(x, str) for x in v)
        kinds[c] = "text" if isinstance(v, str) else "words" if words else "other"
    return kinds


def layout(kinds: dict[str, str]) -> tuple[str, list[str]]:
    """(kind, columns): how a split with these columns is written (see the module doc)."""
    cols = list(kinds)
    for words in ("tokens", "words"):
        if kinds.get(words) == "words":
            return "conllu", cols
    if "translation" in cols:
        return "tsv", ["translation"]
    texts = [c for c in cols if kinds[c] == "text"]
    if len(cols) == 2 and len(texts) == 2:
        return "tsv", cols
    if len(cols) == 1 and texts:
        return "text", cols
    return "jsonl", cols


def _local_parquet(spec: HubSpec, split: str) -> list[str] | None:
    """The split's files when all are local parquet files, else None. Those are read with
    pyarrow's record batches: `datasets`' streaming loop holds several times more memory on
    the same files (3 M rows: 1,020 MB against 297 MB, docs/benchmarks.md)."""
    if not spec.local:
        return None
    try:
        builder = _datasets().load_dataset_builder(_path(spec), spec.config)
        files = [str(f) for f in (builder.config.data_files or {})[split]]
    except Exception:  # no such split, or a layout the builder reads another way
        return None
    if files and all(f.endswith(".parquet") and Path(f).is_file() for f in files):
        return files
    return None


def _batches(spec: HubSpec, ds: Any) -> Iterator[dict[str, list[Any]]]:
    """The split in column batches of BATCH_ROWS rows (bounded memory)."""
    files = _local_parquet(spec, str(ds.split)) if ds.split is not None else None
    if files is None:
        yield from ds.iter(batch_size=BATCH_ROWS)
        return
    import pyarrow.parquet as pq

    for f in files:
        yield from (b.to_pydict() for b in pq.ParquetFile(f).iter_batches(BATCH_ROWS))


def rows(spec: HubSpec, ds: Any) -> Iterator[dict[str, Any]]:
    """The split's rows as dicts, ClassLabel values as names."""
    features = ds.features
    namers = {c: _namer(f) for c, f in (features or {}).items()}
    for batch in _batches(spec, ds):
        cols = list(batch)
        for values in zip(*(batch[c] for c in cols), strict=True):
            yield {c: namers[c](v) if c in namers else v for c, v in zip(cols, values, strict=True)}


EXT = {"conllu": ".conllu", "tsv": ".tsv", "text": ".txt", "jsonl": ".jsonl"}


def local_copy(spec_text: str) -> Path:
    """The split of `hf:...` written to a temporary local file (streamed: bounded memory),
    once per process; its extension says its format (.conllu, .tsv, .txt, .jsonl)."""
    if spec_text in _copies:
        return _copies[spec_text]
    from seqtool.data.atomic import AtomicFile

    spec = parse(spec_text)
    ds = open_split(spec)
    first = None if ds.features is not None else next(iter(ds.take(1)), None)
    kind, cols = layout(column_kinds(ds.features, first))
    safe = "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in spec_text[3:])[-80:]
    path = _tmpdir() / f"{safe}{EXT[kind]}"
    write = {"conllu": _conllu, "tsv": _tsv, "text": _text, "jsonl": _jsonl}[kind]
    n = 0
    with AtomicFile(path, newline="") as out:
        for row in rows(spec, ds):
            out.write(write(row, cols))
            n += 1
    if n == 0:
        path.unlink(missing_ok=True)
        raise DataError("the split has no rows", spec_text)
    _copies[spec_text] = path
    return path


def _tmpdir() -> Path:
    global _tmp
    if _tmp is None:
        _tmp = Path(tempfile.mkdtemp(prefix="seqtool-hf-"))
        atexit.register(shutil.rmtree, _tmp, True)
    return _tmp


def _clean(v: Any) -> str:
    return " ".join(str(v).split()) if v is not None else ""


def _jsonl(row: dict[str, Any], cols: list[str]) -> str:
    obj = {c: row.get(c) for c in cols}
    return json.dumps(obj, ensure_ascii=False, default=str) + "\n"


def _text(row: dict[str, Any], cols: list[str]) -> str:
    t = row.get(cols[0]) or ""
    return t if t.endswith("\n") else t + "\n"


def _tsv(row: dict[str, Any], cols: list[str]) -> str:
    if cols == ["translation"]:
        pair = list((row.get("translation") or {}).values())
    else:
        pair = [row.get(c) for c in cols]
    return "\t".join(_clean(v) for v in pair[:2]) + "\n"


_CONLLU = (
    "lemmas",
    ("upos", "pos_tags", "tags"),
    "xpos",
    "feats",
    "head",
    "deprel",
    "deps",
    "misc",
)


def _conllu(row: dict[str, Any], cols: list[str]) -> str:
    words = row.get("tokens") if "tokens" in row else row.get("words")
    words = words or []
    lists = []
    for names in _CONLLU:
        col = next((c for c in (names if isinstance(names, tuple) else (names,)) if c in row), None)
        vals = row.get(col) if col else None
        lists.append(vals if isinstance(vals, list) and len(vals) == len(words) else None)
    out = []
    if row.get("idx") is not None:
        out.append(f"# sent_id = {_clean(row['idx'])}\n")
    if isinstance(row.get("text"), str):
        out.append(f"# text = {_clean(row['text'])}\n")
    for i, w in enumerate(words):
        fields = [str(i + 1), _clean(w) or "_"]
        fields += [(_clean(v[i]) or "_") if v is not None else "_" for v in lists]
        out.append("\t".join(fields) + "\n")
    return "".join(out) + "\n"


def offline_env() -> None:
    """Local folders never need the network: set offline before `datasets` is imported."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
