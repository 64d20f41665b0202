"""Corpora larger than memory: stream text in chunks, hash it, and tokenize it once into a
token file cached by content hash (reused by the next run on the same text; windows are read
from it with pread).

Memory stays bounded by the chunk size: characters are encoded with a numpy lookup table
over code points, subword tokenizers line batch by line batch.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.data.atomic import AtomicFile, write_bytes
from seqtool.data.text import ENCODING_ERRORS, check_input_path
from seqtool.errors import DataError, SeqtoolError

CHUNK = 2 << 20  # bytes read at a time (transient memory is ~20x this)
SPM_SAMPLE_BYTES = 64 << 20  # text a sentencepiece model is trained on, at most


def id_dtype(max_id: int) -> np.dtype:
    """The smallest stored id type for ids up to max_id (token files and row caches)."""
    return np.dtype("int16" if max_id <= 32767 else "int32")


def cache_dir() -> Path:
    return Path(os.environ.get("SEQTOOL_CACHE") or Path.home() / ".cache" / "seqtool")


def spool_stdin(files: list[str]) -> tuple[list[str], Any]:
    """stdin can be read once; copy it to a temp file so the corpus can be streamed twice."""
    if "-" not in files:
        return files, None
    with tempfile.NamedTemporaryFile(prefix="seqtool-stdin-", suffix=".txt", delete=False) as tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp)
    return [tmp.name if f == "-" else f for f in files], tmp.name


def iter_text(
    files: list[str], encoding_errors: str = "strict", names: list[str] | None = None
) -> Iterator[tuple[bytes, str]]:
    """(raw bytes as read, decoded text) chunks over files joined by a newline where one is
    missing; the raw chunks concatenate to the files' bytes.

    An incremental decoder carries a character split between chunks; a decoding error names
    file:line:column and the byte offset, as read_text does for small files.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise SeqtoolError(f"encoding errors must be one of {', '.join(ENCODING_ERRORS)}")
    names = names or files
    for k, (f, name) in enumerate(zip(files, names, strict=True)):
        p = check_input_path(f)
        decoder = codecs.getincrementaldecoder("utf-8")(encoding_errors)
        offset, line, last = 0, 1, b""  # bytes read before this block, and their lines
        col0 = 0  # bytes since the last newline before this block
        with p.open("rb") as fh:
            while True:
                block = fh.read(CHUNK)
                try:
                    text = decoder.decode(block, final=not block)
                except UnicodeDecodeError as e:
                    # e.object: the decoder's held bytes (part of a character, no newline)
                    # followed by this block; e.start indexes into it.
                    data, held = e.object, len(e.object) - len(block)
                    nl = data.rfind(b"\n", 0, e.start)
                    col = (e.start - nl) if nl >= 0 else (col0 - held + e.start + 1)
                    raise DataError(
                        f"invalid UTF-8 at byte offset {offset - held + e.start} "
                        "(use --encoding-errors replace to substitute)",
                        name,
                        line + data.count(b"\n", 0, e.start),
                        col,
                    ) from None
                n_nl = block.count(b"\n")
                line += n_nl
                col0 = len(block) - block.rfind(b"\n") - 1 if n_nl else col0 + len(block)
                offset += len(block)
                last = block[-1:] or last
                if block or text:
                    yield block, text
                if not block:
                    break
        if k < len(files) - 1 and last != b"\n":
            yield b"\n", "\n"


class TokenFile:
    """A token stream on disk (int16/int32 ids). Windows are read with pread, not through a
    memory map: random access to a mapped file faults in read-ahead pages that stay resident,
    so RSS would creep towards the file's size over a long run."""

    def __init__(self, path: Path, meta: dict[str, Any], start: int = 0, end: int | None = None):
        self.path, self.meta = path, meta
        self.dtype = np.dtype(meta["dtype"])
        self.start = start
        self.end = meta["tokens"] if end is None else end
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def num_chars(self) -> int:
        return int(self.meta["chars"])

    def span(self, start: int, end: int) -> TokenFile:
        return TokenFile(self.path, self.meta, self.start + start, self.start + min(end, len(self)))

    def read(self, start: int = 0, n: int | None = None) -> np.ndarray:
        n = len(self) - start if n is None else min(n, len(self) - start)
        size = self.dtype.itemsize
        buf = os.pread(self._fd, n * size, (self.start + start) * size)
        return np.frombuffer(buf, dtype=self.dtype)

    def gather(self, starts: list[int], n: int):
        """(B, n) int64 tensor of windows beginning at `starts`."""
        import torch

        return torch.from_numpy(np.stack([self.read(s, n) for s in starts]).astype(np.int64))

    def tensor(self):
        """The whole span in memory (for dev data and small corpora)."""
        import torch

        return torch.from_numpy(self.read().copy())


def corpus_hash(files: list[str], encoding_errors: str) -> tuple[str, np.ndarray, int]:
    """One pass: sha256 of the text, code-point counts, character count."""
    h = hashlib.sha256()
    counts = np.zeros(0x110000, dtype=np.int64)
    chars = 0
    for raw, text in iter_text(files, encoding_errors):
        h.update(raw)
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        counts += np.bincount(cps, minlength=0x110000)
        chars += len(text)
    return h.hexdigest(), counts, chars


def spm_sample(files: list[str], encoding_errors: str) -> list[str]:
    """Lines from the start of the corpus, up to SPM_SAMPLE_BYTES, to train sentencepiece."""
    lines, size, tail = [], 0, ""
    for _, text in iter_text(files, encoding_errors):
        parts = (tail + text).split("\n")
        tail = parts.pop()
        lines += parts
        size += len(text)
        if size >= SPM_SAMPLE_BYTES:
            break
    return lines + ([tail] if tail else [])


def _encode_chars(tok, text: str) -> np.ndarray:
    lut = getattr(tok, "_np_lut", None)
    if lut is None:  # code point -> id, unknown characters -> unk
        lut = np.full(0x110000, tok.unk_id, dtype=np.int32)
        for c in tok.chars:
            lut[ord(c)] = tok.piece_to_id(c)
        tok._np_lut = lut
    return lut[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]


def _load_meta(path: Path, meta_path: Path, content_hash: str) -> dict[str, Any] | None:
    """The metadata of a whole cache entry, or None (absent, damaged or from other text)."""
    try:
        meta = json.loads(meta_path.read_text())
        whole = path.stat().st_size == meta["tokens"] * np.dtype(meta["dtype"]).itemsize
        return meta if whole and meta["hash"] == content_hash else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tokenize_to_cache(
    files: list[str], tok, content_hash: str, chars: int, encoding_errors: str = "strict"
) -> TokenFile:
    """The corpus as a token file, written once per (text, tokenizer).

    Both files are written through data/atomic.py (temp file, fsync, rename), the metadata
    last: a build killed at any point leaves no metadata beside a token file, so the next run
    builds the entry again rather than trusting a partial one.
    """
    key = hashlib.sha256(content_hash.encode() + tok.to_bytes()).hexdigest()[:32]
    d = cache_dir() / "tokens"
    path, meta_path = d / f"{key}.bin", d / f"{key}.json"
    meta = _load_meta(path, meta_path, content_hash)
    if meta is not None:
        return TokenFile(path, meta)
    meta_path.unlink(missing_ok=True)  # a damaged entry: no metadata until rebuilt whole
    dtype = id_dtype(tok.vocab_size - 1).name
    n = 0
    with AtomicFile(path, "wb") as out:  # removed, not renamed in, on an error
        tail = ""
        for _, text in iter_text(files, encoding_errors):
            if tok.kind == "char":
                ids = _encode_chars(tok, text)
            else:  # whole lines only, so subwords never straddle a chunk boundary
                parts = (tail + text).split("\n")
                tail = parts.pop()
                ids = np.fromiter(
                    (i for ln in tok.encode([p + "\n" for p in parts]) for i in ln),
                    dtype=np.int32,
                )
            out.write(ids.astype(dtype).tobytes())
            n += len(ids)
        if tok.kind != "char" and tail:
            ids = np.asarray(tok.encode(tail), dtype=dtype)
            out.write(ids.tobytes())
            n += len(ids)
    meta = {"tokens": n, "dtype": dtype, "chars": chars, "hash": content_hash}
    write_bytes(meta_path, json.dumps(meta).encode())  # last: marks the entry whole
    return TokenFile(path, meta)
