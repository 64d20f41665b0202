"""CoNLL-U and plain-text sentences for the tagger.

CoNLL-U is read line by line so every error names its file and line; ids and comments are
parsed with the `conllu` library. Raw lines are kept, so writing a sentence back changes
only the tag column: multiword ranges (`3-4`) and empty nodes (`8.1`) are kept for output
and skipped for tagging, as in UD English EWT.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from seqtool.errors import DataError, SeqtoolError

TAG_FIELDS = {"upos": 3, "xpos": 4}  # column index of each taggable field
NCOLS = 10


@dataclass
class Sentence:
    """One sentence: its syntactic words, gold tags if known, and raw CoNLL-U lines."""

    words: list[str]
    tags: list[str | None] | None = None  # gold tags ('_' -> None); None for plain text
    lines: list[str] = field(default_factory=list)  # raw lines incl. comments, ranges, empty nodes
    word_lines: list[int] = field(default_factory=list)  # index in `lines` of each word
    metadata: dict[str, str] = field(default_factory=dict)
    # Segmented raw text: (token form, number of words in it, no space after it) per token;
    # empty: one token per word (whitespace-split text)
    tokens: list[tuple[str, int, bool]] = field(default_factory=list)


def check_tag_field(tag_field: str) -> int:
    if tag_field not in TAG_FIELDS:
        raise SeqtoolError(f"--tag-field must be upos or xpos, not {tag_field!r}")
    return TAG_FIELDS[tag_field]


def _sentence(block: list[tuple[int, str]], name: str, col: int) -> Sentence:
    from conllu.exceptions import ParseException
    from conllu.parser import parse_comment_line, parse_id_value

    s = Sentence(words=[], tags=[])
    for lineno, line in block:
        s.lines.append(line)
        if line.startswith("#"):
            with contextlib.suppress(ParseException):  # a bare '#': kept, no metadata
                s.metadata.update(parse_comment_line(line))
            continue
        cols = line.split("\t")
        if len(cols) != NCOLS:
            raise DataError(
                f"expected {NCOLS} tab-separated columns, found {len(cols)}", name, lineno
            )
        try:
            tid = parse_id_value(cols[0])
        except ParseException:
            tid = None
        if tid is None:
            raise DataError(f"bad token id {cols[0]!r} (want 1, 3-4 or 8.1)", name, lineno, 1)
        if not isinstance(tid, int):  # multiword range or empty node: kept, not tagged
            continue
        if tid != len(s.words) + 1:
            raise DataError(
                f"token id {tid} out of sequence (expected {len(s.words) + 1})", name, lineno, 1
            )
        s.words.append(cols[1])
        s.tags.append(None if cols[col] == "_" else cols[col])
        s.word_lines.append(len(s.lines) - 1)
    if not s.words:
        first = block[0][0]
        raise DataError("sentence without any word lines", name, first)
    return s


def read_conllu(
    lines: Iterable[str], name: str = "<stdin>", tag_field: str = "upos"
) -> Iterator[Sentence]:
    """Sentences from CoNLL-U lines (without newlines), streamed; bad lines -> DataError."""
    col = check_tag_field(tag_field)
    block: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            block.append((lineno, line))
        elif block:
            yield _sentence(block, name, col)
            block = []
    if block:
        yield _sentence(block, name, col)


def read_conllu_file(
    path: str, tag_field: str = "upos", encoding_errors: str = "strict"
) -> Iterator[Sentence]:
    from seqtool.data.text import display_name, iter_lines

    name = display_name(path)
    return read_conllu(iter_lines(path, encoding_errors), name, tag_field)


# -- plain text -----------------------------------------------------------------------------

_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'re|'ve|'ll|'d|'m|’s|’re|’ve|’ll|’d|’m|n’t)$")
_ABBREV = re.compile(
    r"^(?:[A-Za-z]\.){2,}$|^(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|vs|etc|Inc|Ltd|Co|e\.g|i\.e)\.$"
)
_URLISH = re.compile(r"^(?:https?://|www\.)\S+$|^\S+@\S+\.\w+$")
_EDGE = "\"'“”‘’`([{<)]}>,;:!?.…"
_CLITICS = {"'s", "'re", "'ve", "'ll", "'d", "'m", "’s", "’re", "’ve", "’ll", "’d", "’m"}


def simple_tokenize(text: str) -> list[str]:
    """Whitespace split, then punctuation peeled off word edges and English clitics split
    (`don't` -> `do n't`), roughly as UD English tokenizes. Inner punctuation (3.5, e-mail,
    U.S.) stays inside its word."""
    out: list[str] = []
    for chunk in text.split():
        if _URLISH.match(chunk) or _ABBREV.match(chunk) or chunk.lower() in _CLITICS:
            out.append(chunk)  # an already split clitic (it 's) stays whole
            continue
        head: list[str] = []
        tail: list[str] = []
        while chunk and chunk[0] in _EDGE:
            head.append(chunk[0])
            chunk = chunk[1:]
        while chunk and chunk[-1] in _EDGE and not _ABBREV.match(chunk):
            if chunk.endswith("...") and len(chunk) > 3:
                tail.append("...")
                chunk = chunk[:-3]
                continue
            tail.append(chunk[-1])
            chunk = chunk[:-1]
        out += head
        if chunk:
            m = _CLITIC.match(chunk)
            if m and m.group(1).isalpha():
                out += [m.group(1), m.group(2)]
            else:
                out.append(chunk)
        out += reversed(tail)
    return out


def read_text_sentences(lines: Iterable[str]) -> Iterator[Sentence]:
    """One sentence per line, words split at whitespace (`tag --pretokenized`). Blank lines
    become empty sentences so output lines stay aligned with input lines."""
    for line in lines:
        yield Sentence(words=line.split(), metadata={"text": line.strip()})


# -- writing --------------------------------------------------------------------------------


def to_conllu(s: Sentence, tags: list[str], tag_field: str = "upos") -> str:
    """The sentence as a CoNLL-U block with `tags` in the tag column; other columns as read.
    A sentence from text gets `# text`, the segmenter's multiword ranges and SpaceAfter=No."""
    col = TAG_FIELDS[tag_field]
    if s.lines:
        lines = list(s.lines)
        for tag, i in zip(tags, s.word_lines, strict=True):
            cols = lines[i].split("\t")
            cols[col] = tag
            lines[i] = "\t".join(cols)
        return "\n".join(lines) + "\n\n"
    # Text input has no parser behind it: a flat tree (word 1 the root, every other word
    # its dependent) makes the file valid for tools that need heads, such as udeval.
    out = ["# newpar"] if "newpar" in s.metadata else []
    if s.metadata.get("text"):
        out.append(f"# text = {s.metadata['text']}")
    layout = s.tokens or [(w, 1, False) for w in s.words]
    i = 1
    for form, n, no_space in layout:
        misc = "SpaceAfter=No" if no_space else "_"
        if n > 1:  # a multiword token: its range line carries the form and SpaceAfter
            out.append(f"{i}-{i + n - 1}\t{form}" + "\t_" * 7 + f"\t{misc}")
        for k in range(i, i + n):
            cols = [str(k), s.words[k - 1]] + ["_"] * 8
            cols[col] = tags[k - 1]
            cols[6], cols[7] = ("0", "root") if k == 1 else ("1", "dep")
            cols[9] = misc if n == 1 else "_"
            out.append("\t".join(cols))
        i += n
    return "\n".join(out) + "\n\n"
