"""The probes of `seqtool inspect cells`: simple per-character features of a text that a cell
might follow (Karpathy, Johnson & Fei-Fei 2015), and the alignment of tokens to characters.

A probe is one float per character, computed from the text alone; a token takes the value at
its last character (the state after reading it). numpy is imported inside the functions, so
the CLI can list the built-ins for --help without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from seqtool.errors import SeqtoolError

# name -> what it measures (listed by --help and by the error for an unknown name)
BUILTINS: dict[str, str] = {
    "line-position": "characters since the line began",
    "line-remaining": "characters left in the line",
    "in-quotes": '1 inside "double quotes"',
    "bracket-depth": "nesting depth of (), [] and {}",
    "word-position": "characters since the word began, from 1; 0 outside words",
    "in-word": "1 inside a word",
    "after-sentence-end": "1 after . ! or ? until the next word",
}
_OPEN, _CLOSE = "([{", ")]}"
_QUOTES = '"\u201c\u201d'
_WORD = re.compile(r"\w+(?:'\w+)*")


@dataclass(frozen=True)
class Probe:
    name: str
    regex: str | None = None  # None: a built-in


def parse_probes(specs: list[str]) -> list[Probe]:
    """--probe values -> probes. NAME picks a built-in (then only the named built-ins run);
    NAME=REGEX adds a regex probe. Without any built-in named, all of them run."""
    chosen: list[Probe] = []
    regexes: list[Probe] = []
    for spec in specs:
        name, eq, regex = spec.partition("=")
        name = name.strip()
        if not eq:
            if name not in BUILTINS:
                raise SeqtoolError(
                    f"--probe {spec!r}: no built-in probe of that name; the built-ins are "
                    f"{', '.join(BUILTINS)} (or give NAME=REGEX)"
                )
            chosen.append(Probe(name))
            continue
        if not name or name in BUILTINS:
            raise SeqtoolError(f"--probe {spec!r}: NAME=REGEX needs a new name before '='")
        if not regex:
            raise SeqtoolError(f"--probe {spec!r}: the regular expression after '=' is empty")
        try:
            re.compile(regex, re.MULTILINE)
        except re.error as e:
            raise SeqtoolError(f"--probe {spec!r}: bad regular expression: {e}") from None
        regexes.append(Probe(name, regex))
    names = [p.name for p in chosen + regexes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SeqtoolError(f"--probe: {', '.join(dup)} given twice")
    return (chosen or [Probe(n) for n in BUILTINS]) + regexes


def _spans_mask(n: int, spans: list[tuple[int, int]]) -> Any:
    """1 on the characters inside any [start, end) span."""
    import numpy as np

    delta = np.zeros(n + 1, dtype=np.int32)
    for a, b in spans:
        delta[a] += 1
        delta[b] -= 1
    return (np.cumsum(delta[:n]) > 0).astype(np.float32)


def probe_values(probe: Probe, text: str) -> Any:
    """One float32 per character of `text`."""
    import numpy as np

    n = len(text)
    idx = np.arange(n)
    if probe.regex is not None:
        spans = [m.span() for m in re.finditer(probe.regex, text, re.MULTILINE)]
        return _spans_mask(n, spans)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    name = probe.name
    if name in ("line-position", "line-remaining"):
        nl = codes == 10
        if name == "line-position":  # the newline closing a line belongs to it
            prev = np.where(nl, idx, -1)
            start = np.maximum.accumulate(np.concatenate([[-1], prev[:-1]])) + 1
            return (idx - start).astype(np.float32)
        nxt = np.where(nl, idx, n)[::-1]
        end = np.minimum.accumulate(nxt)[::-1]
        return (end - idx).astype(np.float32)
    if name == "in-quotes":
        q = np.isin(codes, [ord(c) for c in _QUOTES])
        inside = (np.cumsum(q) % 2 == 1) | q  # opening and closing quotes count as inside
        return inside.astype(np.float32)
    if name == "bracket-depth":
        delta = np.isin(codes, [ord(c) for c in _OPEN]).astype(np.int64)
        close = np.isin(codes, [ord(c) for c in _CLOSE])
        delta -= close
        s = np.cumsum(delta)
        depth = s - np.minimum(0, np.minimum.accumulate(s))  # an unmatched closer stays at 0
        before = np.concatenate([[0], depth[:-1]])
        return np.where(close, before, depth).astype(np.float32)  # a closer is still inside
    spans = [m.span() for m in _WORD.finditer(text)]
    in_word = _spans_mask(n, spans)
    if name == "in-word":
        return in_word
    if name == "word-position":
        starts = np.zeros(n, dtype=np.int64)
        for a, b in spans:
            starts[a:b] = a
        return np.where(in_word > 0, idx - starts + 1, 0).astype(np.float32)
    if name == "after-sentence-end":
        ends = np.isin(codes, [ord(c) for c in ".!?"])
        last_end = np.maximum.accumulate(np.where(ends, idx, -1))
        last_word = np.maximum.accumulate(np.where(in_word > 0, idx, -1))
        prev_end = np.concatenate([[-1], last_end[:-1]])
        prev_word = np.concatenate([[-1], last_word[:-1]])
        return ((prev_end > prev_word) & (in_word == 0) & ~ends).astype(np.float32)
    raise SeqtoolError(f"no built-in probe {name!r}")  # parse_probes lets none through


def token_ends(text: str, pieces: list[str], offset: int = 0) -> list[int]:
    """Exclusive end offset of each token in `text` (plus `offset`). Tokens that spell the
    text exactly (characters) map one to one; subword pieces (with U+2581 for a space) and
    words are found in order; a piece that cannot be found (<unk>) ends where the last did."""
    if len(pieces) == len(text):
        return list(range(offset + 1, offset + len(text) + 1))
    ends, pos, low = [], 0, text.lower()
    for p in pieces:
        q = p.replace("\u2581", " ").strip().lower()
        at = low.find(q, pos, pos + len(q) + 64) if q else -1
        if at >= 0:
            pos = at + len(q)
        ends.append(offset + pos)
    return ends
