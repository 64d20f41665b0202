"""Segmenter data: raw text and its gold segmentation from CoNLL-U, one label per character,
training windows, prediction windows, and raw text back to tokens, words and sentences.

Each character is labelled INSIDE (inside a token, or whitespace), TOKEN (the last character
of a token), MWT (the last character of a multiword token such as `don't` = `do` + `n't`) or
SENTENCE (the last character of a sentence's last token). The text is the treebank's own
`# text` (or, without it, the forms joined as `SpaceAfter=No` says); the sentences of a
paragraph (`# newpar`, `# newdoc`) are joined with a space, so the model sees running text and
learns where sentences end. Multiword tokens are expanded into their words by a table learnt
from the training data (stored in the checkpoint), with English clitic rules for unseen ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqtool.data.batching import RandomWindows
from seqtool.data.conllu import Sentence, read_conllu
from seqtool.data.tagging import windows
from seqtool.errors import CheckpointError, SeqtoolError

INSIDE, TOKEN, MWT, SENTENCE = 0, 1, 2, 3
LABELS = ("inside", "token", "mwt", "sentence")
IGNORE = -100  # label of padding in training windows
PAD = 0  # the char tokenizer's <pad> id
WINDOW, CONTEXT = 512, 48  # prediction: window length, context kept on each side of a cut
MAX_CHARS = 16_384  # characters (with padding) per forward pass: fastest on CPU (measured)


@dataclass
class Paragraph:
    """Running text with its gold labels, one per character."""

    text: str
    labels: np.ndarray  # (len(text),) int8


# -- reading CoNLL-U ---------------------------------------------------------------------------


def tokens_of(s: Sentence) -> list[tuple[str, list[str], bool]]:
    """The surface tokens of a sentence as (form, its words, space after): a multiword range
    line (`2-3 don't`) is one token whose words are the lines it spans."""
    toks: list[tuple[str, list[str], bool]] = []
    upto = 0
    for line in s.lines:
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if "." in cols[0]:  # empty node: no text
            continue
        space = "SpaceAfter=No" not in cols[9].split("|")
        if "-" in cols[0]:
            toks.append((cols[1], [], space))
            upto = int(cols[0].split("-")[1])
        elif int(cols[0]) <= upto:
            toks[-1][1].append(cols[1])
        else:
            toks.append((cols[1], [cols[1]], space))
    return toks


def _align(text: str, forms: Sequence[str]) -> list[int] | None:
    """End offset in `text` of each form (whitespace ignored), or None if they differ."""
    ends, pos, n = [], 0, len(text)
    for form in forms:
        for c in form:
            if c.isspace():
                continue
            while pos < n and text[pos].isspace():
                pos += 1
            if pos >= n or text[pos] != c:
                return None
            pos += 1
        ends.append(pos)
    return ends


def sentence_text(s: Sentence, toks: list[tuple[str, list[str], bool]]) -> tuple[str, list[int]]:
    """(the sentence's text, end offset of each token): `# text` when the forms spell it,
    else the forms joined as SpaceAfter says."""
    text = s.metadata.get("text") or ""
    ends = _align(text, [t[0] for t in toks]) if text else None
    if ends is not None:
        return text[: ends[-1]] if ends else text, ends
    parts, ends, pos = [], [], 0
    for form, _, space in toks:
        parts.append(form + (" " if space else ""))
        pos += len(form)
        ends.append(pos)
        pos += space
    return "".join(parts).rstrip(" "), ends


def read_paragraphs(
    lines: Iterable[str], name: str, counts: Counter | None = None
) -> Iterator[Paragraph]:
    """Paragraphs of a CoNLL-U file with their labels; every token's (form, words),
    lowercased, is counted into `counts` when given (for Multiwords.learn). Without
    paragraph marks the whole file is one. Sentences are joined by a space, or by nothing
    where the last token says SpaceAfter=No."""
    texts: list[str] = []
    labels: list[np.ndarray] = []

    def paragraph() -> Paragraph:
        n = sum(map(len, texts)) - len(join)  # less the last sentence's joiner
        return Paragraph("".join(texts)[:n], np.concatenate(labels)[:n])

    join = ""
    for s in read_conllu(lines, name):
        if any(k.startswith(("newpar", "newdoc")) for k in s.metadata) and texts:
            yield paragraph()
            texts, labels = [], []
        toks = tokens_of(s)
        text, ends = sentence_text(s, toks)
        join = " " if toks[-1][2] else ""
        lab = np.zeros(len(text) + len(join), np.int8)  # the joiner is INSIDE
        for (form, words, _), end in zip(toks, ends, strict=True):
            lab[end - 1] = MWT if len(words) > 1 else TOKEN
            if counts is not None:
                counts[form.lower(), tuple(w.lower() for w in words)] += 1
        lab[len(text) - 1] = SENTENCE
        texts.append(text + join)
        labels.append(lab)
    if texts:
        yield paragraph()


@dataclass
class SegmentData:
    """Held-out paragraphs with gold labels; `gold`: the CoNLL-U text, for udeval."""

    paragraphs: list[Paragraph]
    gold: str | None = None


def read_files(files: Sequence[str], encoding_errors: str, counts: Counter | None = None):
    """The paragraphs of CoNLL-U files ('-': stdin); token counts as read_paragraphs'."""
    from seqtool.data.text import display_name, iter_lines

    if not files:
        raise SeqtoolError("give at least one training file (or - for stdin)")
    out: list[Paragraph] = []
    for f in files:
        name = display_name(f)
        out += read_paragraphs(iter_lines(f, encoding_errors), name, counts)
    if not out:
        raise SeqtoolError(f"{files[0]}: no sentences")
    return out


def running_text(paragraphs: Sequence[Paragraph]) -> tuple[str, np.ndarray]:
    """Paragraphs joined by spaces into one text, with its labels (the spaces: INSIDE)."""
    labels = np.concatenate([np.append(p.labels, INSIDE) for p in paragraphs])[:-1]
    return " ".join(p.text for p in paragraphs), labels


def sentence_texts(p: Paragraph) -> list[str]:
    """The text of each gold sentence of a paragraph."""
    out, start = [], 0
    for e in np.flatnonzero(p.labels == SENTENCE).tolist():
        out.append(p.text[start : e + 1].strip())
        start = e + 1
    return out


# -- multiword tokens ---------------------------------------------------------------------------

_CLITIC = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|m|d|re|ve|ll))$")


class Multiwords:
    """Multiword tokens -> words, learnt from training data: `table` maps a token
    (lowercased) to its most frequent words; `usual` holds the tokens that were multiword
    at least as often as not (`dont`, `cannot`), split even where the model says 'token'."""

    def __init__(self, table: dict[str, list[str]], usual: Iterable[str] = ()) -> None:
        self.table, self.usual = dict(table), frozenset(usual)

    @classmethod
    def learn(cls, counts: Counter) -> Multiwords:
        """From counts of (form, words), lowercased (read_paragraphs)."""
        best: dict[str, tuple[int, tuple[str, ...]]] = {}
        multi, single = Counter(), Counter()
        for (form, words), n in counts.items():
            if len(words) == 1:
                single[form] += n
                continue
            multi[form] += n
            if n > best.get(form, (0, ()))[0]:
                best[form] = (n, words)
        table = {form: list(words) for form, (_, words) in sorted(best.items())}
        return cls(table, sorted(f for f in multi if multi[f] >= single[f]))

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "usual": sorted(self.usual)}

    @classmethod
    def from_json(cls, obj: Any) -> Multiwords:
        if not isinstance(obj, dict) or not isinstance(obj.get("table"), dict):
            raise CheckpointError("segmenter checkpoint lacks its multiword-token table")
        return cls(obj["table"], obj.get("usual", ()))

    def split(self, form: str, predicted: bool = True) -> list[str]:
        """The words of a token: a multiword one (`predicted`, or usually so) by the table,
        the token's case kept, else by English clitic rules (`they'll` -> they 'll); a token
        neither splits stays one word."""
        key = form.lower()
        if not predicted and key not in self.usual:
            return [form]
        words = self.table.get(key)
        if words is None:
            m = _CLITIC.match(form)
            return [m.group(1), m.group(2)] if m else [form]
        if "".join(words) == key and len(key) == len(form):  # cut the token: case kept
            out, pos = [], 0
            for w in words:
                out.append(form[pos : pos + len(w)])
                pos += len(w)
            return out
        if form.isupper():
            return [w.upper() for w in words]
        return [words[0][:1].upper() + words[0][1:], *words[1:]] if form[:1].isupper() else words


@dataclass(slots=True)
class Token:
    form: str
    words: list[str]
    start: int  # offsets in the text
    end: int


# Every whitespace code point lies below U+3001: a lookup table over them (the last entry,
# U+3001, stands for every code point above and is not whitespace).
_SPACE = np.array([chr(c).isspace() for c in range(0x3002)])


def decode(
    texts: Sequence[str], labels: Sequence[np.ndarray], mwt: Multiwords, split: bool = True
) -> list[list[list[Token]]]:
    """Per-character labels -> each text's sentences of tokens. Whitespace always ends a
    token (the label before it says what kind); the end of a text ends a sentence;
    split=False keeps each text one sentence. The texts are decoded as one, joined by
    newlines: numpy's per-call cost would dominate short lines."""
    joined = "\n".join(texts)
    out: list[list[list[Token]]] = [[] for _ in texts]
    if not joined.strip():
        return out
    y = np.concatenate([np.append(x, INSIDE) for x in labels])[:-1]  # (n,)
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), "<u4")
    space = _SPACE[np.minimum(codes, 0x3001)]  # (n,)
    last = ~space & ((y > INSIDE) | np.append(space[1:], True))  # a token's last char
    starts = np.flatnonzero(~space & np.insert(last[:-1] | space[:-1], 0, True)).tolist()
    ends = np.flatnonzero(last)
    kinds = np.maximum(y[ends], TOKEN).tolist()
    offsets = np.cumsum([len(t) + 1 for t in texts]).tolist()  # where each text ends, + 1
    i, base, cur, usual = 0, 0, [], mwt.usual
    for a, e, kind in zip(starts, (ends + 1).tolist(), kinds, strict=True):
        while a >= offsets[i]:  # a token of a later text: close the current one
            if cur:
                out[i].append(cur)
                cur = []
            base = offsets[i]
            i += 1
        form = joined[a:e]
        words = mwt.split(form, kind == MWT) if kind == MWT or form.lower() in usual else [form]
        cur.append(Token(form, words, a - base, e - base))
        if kind == SENTENCE and split:
            out[i].append(cur)
            cur = []
    if cur:
        out[i].append(cur)
    return out


def sentences_of(
    texts: Sequence[str], segmented: Sequence[list[list[Token]]], split: bool
) -> list[list[Sentence]]:
    """decode()'s tokens as Sentences per text (`# newpar` on each text's first when split)."""
    return [
        [to_sentence(t, toks, newpar=split and j == 0) for j, toks in enumerate(sents)]
        for t, sents in zip(texts, segmented, strict=True)
    ]


def to_sentence(text: str, tokens: list[Token], newpar: bool = False) -> Sentence:
    """A segmented sentence for the tagger and CoNLL-U output (`# text`, ranges, SpaceAfter)."""
    layout = [
        (t.form, len(t.words), t.end < len(text) and not text[t.end].isspace()) for t in tokens
    ]
    meta = {"text": text[tokens[0].start : tokens[-1].end]}
    if newpar:
        meta = {"newpar": "", **meta}
    return Sentence([w for t in tokens for w in t.words], metadata=meta, tokens=layout)


# -- characters to ids --------------------------------------------------------------------------


def char_encoder(tokenizer: Any) -> Callable[[str], np.ndarray]:
    """text -> char ids (int64). A character outside the vocabulary is read as a known one of
    its kind (space, digit, upper or lower letter) when it has one, so unseen scripts still
    split sensibly; U+FFFD (what --encoding-errors replace puts for bad bytes) reads as a
    letter."""
    ids: dict[str, int] = {}
    stoi = tokenizer.piece_to_id
    unk = tokenizer.unk_id

    def known(c: str) -> int:
        i = stoi(c)
        if i == unk:
            sub = " " if c.isspace() else "0" if c.isdigit() else None
            if sub is None and (c.isalpha() or c == "\ufffd"):
                sub = "A" if c.isupper() else "a"
            i = stoi(sub) if sub else unk
        ids[c] = i
        return i

    def encode(text: str) -> np.ndarray:
        get = ids.get
        return np.fromiter((get(c) or known(c) for c in text), np.int64, len(text))

    return encode


# -- training windows ---------------------------------------------------------------------------


class WindowSource(RandomWindows):
    """Random training windows of `length` characters from one stream (resumable).

    Half the windows start at a sentence start (as prediction inputs do); half of all windows
    end after the last sentence that ends inside them, padded after it, so the model learns
    that the end of the input ends a sentence."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray, batch_size: int, length: int, seed=0):
        super().__init__(batch_size, seed)
        n = len(ids)
        self.length = max(2, min(length, n))
        self.ids = torch.from_numpy(np.concatenate([ids, np.zeros(self.length, np.int64)]))
        self.labels = torch.from_numpy(
            np.concatenate([labels, np.full(self.length, IGNORE)]).astype(np.int64)
        )
        ends = np.flatnonzero(labels == SENTENCE)
        self.starts = torch.from_numpy(np.concatenate([[0], ends[:-1] + 2]))
        self.ends = torch.from_numpy(ends + 1)  # exclusive
        self.n = n
        self.steps_per_epoch = max(1, n // (batch_size * self.length))

    def next_batch(self) -> dict[str, torch.Tensor]:
        B, T, g = self.batch_size, self.length, self.gen
        anywhere = torch.randint(0, max(1, self.n - T + 1), (B,), generator=g)
        at_sentence = self.starts[torch.randint(0, len(self.starts), (B,), generator=g)]
        starts = torch.where(torch.rand(B, generator=g) < 0.5, anywhere, at_sentence)
        pos = starts[:, None] + torch.arange(T)  # (B, T)
        ids, labels = self.ids[pos], self.labels[pos]
        # cut after the last sentence end inside the window (if any), for half the rows
        last = torch.searchsorted(self.ends, starts + T, right=True) - 1
        end = self.ends[last.clamp(min=0)] - starts  # (B,) length kept
        cut = (torch.rand(B, generator=g) < 0.5) & (last >= 0) & (end > 0)
        keep = torch.where(cut, end, torch.full_like(end, T))
        pad = torch.arange(T)[None, :] >= keep[:, None]  # (B, T)
        ids, labels = ids.masked_fill(pad, PAD), labels.masked_fill(pad, IGNORE)
        return {"chars": ids[self._part], "labels": labels[self._part]}


# -- prediction windows ---------------------------------------------------------------------------


def window_batches(
    lengths: Sequence[int], size: int = WINDOW, context: int = CONTEXT, max_chars: int = MAX_CHARS
) -> Iterator[list[tuple[int, int, int, int, int]]]:
    """Batches of windows (text, start, end, keep start, keep end) covering texts of these
    lengths: a text longer than `size` is read in overlapping windows whose kept parts tile
    it. Windows are sorted by length; a batch holds at most max_chars with padding."""
    if size < 1 or context < 0 or size <= 2 * context:
        raise SeqtoolError(f"window {size} must exceed twice its context {context}")
    jobs = [(i, *w) for i, n in enumerate(lengths) if n for w in windows(n, size, context)]
    jobs.sort(key=lambda j: j[2] - j[1], reverse=True)
    batch: list[tuple[int, int, int, int, int]] = []
    for j in jobs:
        if batch and (len(batch) + 1) * (batch[0][2] - batch[0][1]) > max_chars:
            yield batch
            batch = []
        batch.append(j)
    if batch:
        yield batch
