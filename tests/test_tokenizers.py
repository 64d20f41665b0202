"""Tokenizers: one protocol, exact round trips, bytes, and the tokenize CLI as a filter."""

from __future__ import annotations

import pytest
from conftest import SAMPLE, run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seqtool import tokenizers
from seqtool.errors import SeqtoolError
from seqtool.tokenizers import CharTokenizer, PieceStream

TEXT = SAMPLE.read_text()


@pytest.fixture(scope="module")
def bpe():
    return tokenizers.train(TEXT.splitlines(), "bpe", 400)


@pytest.fixture(scope="module")
def unigram():
    return tokenizers.train(TEXT.splitlines(), "unigram", 400)


def test_special_ids_agree_across_kinds(bpe):
    char = tokenizers.train([TEXT], "char")
    for t in (char, bpe):
        assert (t.pad_id, t.unk_id, t.bos_id, t.eos_id) == (0, 1, 2, 3)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=sorted(set(TEXT))))
def test_char_round_trip(s):
    tok = CharTokenizer(set(TEXT))
    assert tok.decode(tok.encode(s)) == s


@pytest.fixture(scope="module")
def streams():
    """Tokenizers as language models train them: no dummy prefix, lines concatenate."""
    lines = TEXT.splitlines()
    return [tokenizers.train(lines, kind, 400, dummy_prefix=False) for kind in ("bpe", "unigram")]


# Any text, and text dense in what sentencepiece treats specially: U+2581 (its meta space),
# spaces, tabs, newlines, a private-use character (the encoder's stand-in for U+2581).
TEXTS = st.one_of(
    st.text(),
    st.text(alphabet=st.one_of(st.sampled_from(" \t\n\u2581\ue000ab"), st.characters())),
)
# derandomize: the same cases every run, so CI cannot fail by chance (nor on a slow, shared
# machine: no deadline, no timing health check); the examples are the cases that once
# failed (U+2581 came back as a space) and run first, every time.
ROUND_TRIP = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@ROUND_TRIP
@given(s=TEXTS)
@example(s="a\u2581b")
@example(s="\u2581")
@example(s="\u2581x \u2581\u2581 y\u2581")
@example(s="  two  spaces  ")
@example(s=" leading")
@example(s="trailing ")
@example(s="\t tab\t \u2581\t")
@example(s="the\u2581duke \ue000\u2581 <s></s><unk> 中😀\u2581")
def test_spm_round_trip_any_text(bpe, unigram, streams, s):
    # Identity normalization + byte fallback: every string survives, unseen scripts included;
    # a literal U+2581 is encoded as its byte pieces, so it does not come back as a space.
    for tok in (bpe, unigram, *streams):
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert tok.encode_pieces(s) == [tok.id_to_piece(i) for i in ids]
        assert tok.encode([s, "a"]) == [ids, tok.encode("a")]


def test_spm_ordinary_text_ids_unchanged(bpe):
    # Text without U+2581 is encoded by sentencepiece itself: shipped models see the same ids.
    for line in TEXT.splitlines():
        assert bpe.encode(line) == bpe.sp.Encode(line)
    assert "<0xE2> <0x96> <0x81>" in " ".join(bpe.encode_pieces("a\u2581b"))


def _stream(tok, ids: list[int]) -> str:
    ps = PieceStream(tok)
    return "".join(t for t in map(ps, ids) if t is not None) + ps.flush()


@ROUND_TRIP
@given(s=TEXTS)
@example(s="a\u2581b \u2581\u2581")
def test_piece_stream_matches_decode(streams, s):
    # Generation prints pieces as they come: the same text as decode, U+2581 included.
    for tok in streams:
        assert _stream(tok, tok.encode(s)) == s


BYTE = st.integers(0, 255).map(lambda b: f"<0x{b:02X}>")


@ROUND_TRIP
@given(pieces=st.lists(st.one_of(BYTE, st.integers(4, 10**6)), max_size=20))
@example(pieces=["<0xE2>", "<0x96>", 50])  # a character cut short by a subword
@example(pieces=["<0xFF>", "<0xC3>", "<0xA9>"])  # an impossible byte, then é
@example(pieces=["<0xE2>", "<0x96>"])  # unfinished at the end: flush
def test_piece_stream_matches_decode_on_any_ids(streams, pieces):
    # Sampled ids need not form UTF-8: each stray byte is U+FFFD, as in decode, and the text
    # after it is not lost.
    for tok in streams:
        ids = [tok.piece_to_id(p) if isinstance(p, str) else p % tok.vocab_size for p in pieces]
        ids = [i if i >= 4 else 4 for i in ids]  # no specials: generation never samples them
        assert _stream(tok, ids) == tok.decode(ids)


def test_encode_list_and_bytes(bpe):
    lines = ["the duke", "a brother is a brother"]
    assert bpe.encode(lines) == [bpe.encode(x) for x in lines]
    assert bpe.decode(bpe.encode(lines)) == lines
    again = tokenizers.from_bytes("spm", bpe.to_bytes())
    assert again.encode(lines) == bpe.encode(lines)
    char = tokenizers.train([TEXT], "char")
    assert tokenizers.from_bytes("char", char.to_bytes()).chars == char.chars


def test_char_unknown_reports_positions():
    tok = CharTokenizer("abc")
    assert tok.unknown("abxc") == [(2, "x")]
    assert tok.encode("x") == [tok.unk_id]


def test_corrupt_tokenizer_bytes():
    with pytest.raises(SeqtoolError):
        tokenizers.from_bytes("char", b"\x00garbage")
    with pytest.raises(SeqtoolError):
        tokenizers.from_bytes("spm", b"\x00garbage")


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_cli_train_encode_decode_pipeline(tmp_path, kind):
    model = tmp_path / "tok.model"
    r = run_cli(
        "tokenize", "train", SAMPLE, "--model-type", kind, "--vocab-size", "400", "-o", model
    )
    assert r.code == 0, r
    assert model.is_file()
    text = (
        "Who goes there?\n  Stand,\tand unfold é!\n\na\u2581b\n"
        "\u2581 two  spaces\u2581\u2581and 中 😀 \\s\\ \n"
    )
    for fmt in ("pieces", "ids"):
        enc = run_cli("tokenize", "encode", "--model", model, "--format", fmt, stdin=text)
        assert enc.code == 0, enc
        assert len(enc.out.splitlines()) == len(text.splitlines())
        dec = run_cli("tokenize", "decode", "--model", model, "--format", fmt, stdin=enc.out)
        assert dec.code == 0, dec
        if kind == "bpe":  # chars outside the vocabulary become <unk> for char tokenizers
            assert dec.out == text


def test_cli_tokenize_help_names_values():
    # Readable metavars, not Typer's <str>/<int> (item 8 of issue 16).
    for cmd, names in {
        "train": ["-o, --output FILE", "--model-type TYPE", "--vocab-size N"],
        "encode": ["-m, --model FILE", "--format FORMAT", "[FILE]"],
        "decode": ["-m, --model FILE", "--format FORMAT", "[FILE]"],
    }.items():
        r = run_cli("tokenize", cmd, "--help")
        assert r.code == 0, r
        for name in names:
            assert name in r.out, (cmd, name)


def test_cli_decode_bad_id_names_line_and_column(tmp_path):
    model = tmp_path / "tok.model"
    assert run_cli("tokenize", "train", SAMPLE, "--model-type", "char", "-o", model).code == 0
    r = run_cli("tokenize", "decode", "--model", model, "--format", "ids", stdin="5 6\n7 x9\n")
    assert r.code == 2
    assert "<stdin>:2:3" in r.err


def test_cli_tokenizer_file_missing(tmp_path):
    r = run_cli("tokenize", "encode", "--model", tmp_path / "none.model", stdin="a\n")
    assert r.code == 2 and "no such tokenizer file" in r.err
