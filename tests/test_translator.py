"""The translator: attention, beam search, teacher forcing, the CLI round trip and bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import ROOT, TINY, run_cli

from seqtool import checkpoint, decoding
from seqtool.backbone.attention import Attention
from seqtool.backbone.decoder import Decoder, teacher_forcing_ratio
from seqtool.config import BackboneConfig
from seqtool.tasks import translator as tr
from seqtool.tokenizers import CharTokenizer

SAMPLE = ROOT / "corpora" / "translation-sample.tsv"
PAIRS = [ln.split("\t") for ln in SAMPLE.read_text().splitlines()]


def tiny_model(cell="lstm", attention="dot", input_feeding=False, layers=1, seed=0):
    torch.manual_seed(seed)
    tok = CharTokenizer.train([s + t for s, t in PAIRS])
    cfg = tr.TranslatorConfig(
        encoder=BackboneConfig(
            vocab_size=tok.vocab_size,
            embedding_dim=10,
            hidden_size=7,
            layers=layers,
            cell=cell,
            bidirectional=True,
        ),
        decoder_layers=layers,
        attention=attention,
        input_feeding=input_feeding,
    )
    return tr.Translator(cfg, tok).eval()


def batch_of(model, pairs):
    from seqtool.data.batching import pad

    src = [model.encode_source(s) for s, _ in pairs]
    tgt = [model.target_tokenizer.encode(t) for _, t in pairs]
    s, s_len = pad(src)
    t_in, _ = pad([[2] + t for t in tgt])
    t_out, _ = pad([t + [3] for t in tgt])
    return s, s_len, t_in, t_out


# -- attention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["additive", "dot"])
def test_attention_ignores_padding(kind):
    torch.manual_seed(0)
    att = Attention(kind, query_size=5, key_size=6)
    keys = torch.randn(2, 4, 6)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    ctx, w = att(torch.randn(2, 3, 5), keys, mask)  # (B, T, K), (B, T, S)
    assert ctx.shape == (2, 3, 6) and w.shape == (2, 3, 4)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert (w[0, :, 2:] == 0).all()
    # Whatever sits in the padding does not change the context.
    keys2 = keys.clone()
    keys2[0, 2:] = 100.0
    ctx2, _ = att(torch.zeros(2, 3, 5), keys2, mask)
    ctx1, _ = att(torch.zeros(2, 3, 5), keys, mask)
    assert torch.allclose(ctx1[0], ctx2[0], atol=1e-6)
    one, _ = att(torch.zeros(2, 5), keys, mask)  # a single step: (B, Q) -> (B, K)
    assert torch.allclose(one, ctx1[:, 0], atol=1e-6)


# -- the model: one recurrence, fused and stepped ----------------------------------------------


@pytest.mark.parametrize(
    "cell,attention,feeding",
    [
        ("lstm", "dot", False),
        ("gru", "additive", False),
        ("rnn", "none", False),
        ("lstm", "additive", True),
    ],
)
def test_fused_and_stepped_decoders_agree(cell, attention, feeding):
    """Teacher-forced logits from the fused pass equal the step-by-step pass through
    Recurrent.step, and greedy decoding with the inference Stepper reproduces the argmax of a
    teacher-forced pass over its own output (the three views share one set of weights)."""
    model = tiny_model(cell, attention, feeding, layers=2).requires_grad_(False)
    s, s_len, t_in, t_out = batch_of(model, PAIRS[:3])
    fused, _ = model(s, s_len, t_in)  # (B, T, V)
    st = model.start(s, s_len)
    stepped = []
    for t in range(t_in.size(1)):
        logits, st = model.decoder.step(t_in[:, t], st)  # through the trainable Recurrent.step
        stepped.append(logits)
    assert torch.allclose(fused, torch.stack(stepped, 1), atol=1e-5)
    hyps = model.decode_ids([model.encode_source(p[0]) for p in PAIRS[:3]], beam=1)
    for b, (h,) in enumerate(hyps):
        seq = torch.tensor([[2] + h.ids])
        logits, _ = model(s[b : b + 1, : int(s_len[b])], s_len[b : b + 1], seq)
        assert logits[0].argmax(-1)[: len(h.ids)].tolist() == h.ids
        lp = logits[0].log_softmax(-1)
        ref = sum(float(lp[i, t]) for i, t in enumerate(h.ids))
        if len(h.ids) < int(model.max_lengths(s_len[b : b + 1])):  # stopped on EOS: it counts
            ref += float(lp[len(h.ids), 3])
        assert h.logprob == pytest.approx(ref, rel=1e-5)


def test_teacher_forcing_below_one_feeds_predictions_and_trains():
    model = tiny_model().train()
    s, s_len, t_in, t_out = batch_of(model, PAIRS[:4])
    torch.manual_seed(1)
    _, forced = model(s, s_len, t_in, t_out, teacher_forcing=1.0)
    _, free = model(s, s_len, t_in, t_out, teacher_forcing=0.0)
    free.backward()  # gradients flow through the stepped decoder
    forced, free = float(forced.detach()), float(free.detach())
    assert math.isfinite(forced) and free != pytest.approx(forced)
    assert model.decoder.rnn.rnn.weight_hh_l0.grad is not None


@pytest.mark.parametrize("schedule", ["linear", "inverse-sigmoid"])
def test_teacher_forcing_schedules_decay_to_the_ratio(schedule):
    cfg = tr.TranslatorConfig(teacher_forcing=0.25, teacher_forcing_schedule=schedule)
    vals = [
        teacher_forcing_ratio(cfg.teacher_forcing, cfg.teacher_forcing_schedule, s, 1000)
        for s in range(0, 1001, 50)
    ]
    assert vals[0] == pytest.approx(1.0, abs=0.01)
    assert vals[-1] == pytest.approx(0.25, abs=0.01)
    assert all(a >= b for a, b in zip(vals, vals[1:], strict=False))
    assert vals[10] == pytest.approx(0.625, abs=0.02)  # half way: half way down
    const = tr.TranslatorConfig(teacher_forcing=0.5)
    assert (
        teacher_forcing_ratio(const.teacher_forcing, const.teacher_forcing_schedule, 10, 1000)
        == 0.5
    )


def test_schedule_callback_sets_the_decoder_ratio_from_the_trainer_step():
    """The callback the translator adds to training: resume-safe, the ratio is a function of
    the trainer's step and total steps only."""
    from types import SimpleNamespace

    model = tiny_model()
    model.config = model.config.replace(teacher_forcing=0.25, teacher_forcing_schedule="linear")
    (cb,) = model.callbacks()
    trainer = SimpleNamespace(model=model, step=0, total_steps=1000)
    cb.on_train_start(trainer)
    assert model.decoder.teacher_forcing == pytest.approx(1.0)
    trainer.step = 500
    cb.on_step_end(trainer, 0.0)
    assert model.decoder.teacher_forcing == pytest.approx(0.625)
    trainer.step = 1000
    cb.on_step_end(trainer, 0.0)
    assert model.decoder.teacher_forcing == pytest.approx(0.25)


# -- search ------------------------------------------------------------------------------------


def test_beam_one_equals_greedy():
    model = tiny_model("gru", "additive")
    src = [model.encode_source(p[0]) for p in PAIRS[:6]]
    greedy = model.decode_ids(src, beam=1)
    # The generic beam search with K=1 (not the greedy shortcut decode_ids takes).
    from seqtool.data.batching import pad

    x, lengths = pad(src)
    stepper = model.decoder.stepper()

    def step(tokens, st):
        logits, st = model.decoder.step(tokens, st, stepper.step)
        return logits.log_softmax(-1), st

    with torch.inference_mode():
        beam = decoding.Beam(len(src), 2, 3, model.max_lengths(lengths), beam=1, alpha=1.0)
        found = decoding.decode(step, model.start(x, lengths), beam, model.decoder.reorder)
    assert [f[0].ids for f in found] == [h[0].ids for h in greedy]
    assert [f[0].logprob for f in found] == pytest.approx([h[0].logprob for h in greedy], abs=1e-4)


def test_decoding_steps_through_the_backbone_decoder(monkeypatch):
    """The translator's decoder is the backbone Decoder; greedy, beam search and the stepped
    training pass all go through Decoder.step (search with the inference Stepper, training with
    the trainable Recurrent.step), and beam search follows its beams with Decoder.reorder."""
    from torch import nn

    from seqtool.backbone import Encoder

    model = tiny_model("gru", "additive", True)
    assert type(model.decoder) is Decoder and type(model.encoder) is Encoder
    own = [n for n, m in model.named_modules() if isinstance(m, nn.RNNBase | nn.Linear)]
    assert all(n.startswith(("encoder.", "decoder.")) for n in own)  # no recurrence of its own
    src = [model.encode_source(p[0]) for p in PAIRS[:4]]
    before = {k: model.decode_ids(src, beam=k, n_best=k) for k in (1, 3)}
    calls, reorders = [], []
    step, reorder = Decoder.step, Decoder.reorder

    def spy_step(self, tokens, st, run=None):
        calls.append((len(tokens), run is None))
        return step(self, tokens, st, run)

    def spy_reorder(st, index):
        reorders.append(len(index))
        return reorder(st, index)

    monkeypatch.setattr(Decoder, "step", spy_step)
    monkeypatch.setattr(Decoder, "reorder", staticmethod(spy_reorder))
    greedy = model.decode_ids(src, beam=1)
    longest = max(len(h.ids) for (h,) in greedy)
    assert longest <= len(calls) <= longest + 1  # one step per token (+ the final EOS)
    assert all(n == len(src) and not trained for n, trained in calls)  # the Stepper, batched
    assert greedy == before[1] and reorders == []
    calls.clear()
    beams = model.decode_ids(src, beam=3, n_best=3)
    assert beams == before[3] and calls and reorders
    assert calls[0] == (3 * len(src), False) and all(n % 3 == 0 for n, _ in calls)
    calls.clear()
    s, s_len, t_in, t_out = batch_of(model, PAIRS[:2])
    model(s, s_len, t_in, t_out, teacher_forcing=0.5)
    assert calls == [(2, True)] * t_in.size(1)  # training steps the fused module


@pytest.mark.parametrize("shared", [True, False])
def test_checkpoint_with_the_legacy_key_names_loads_with_identical_outputs(tmp_path, shared):
    """Checkpoints written before the backbone Decoder (the shipped one included) name the
    decoder's parts as the translator's own; they still load, to the same weights and output."""
    torch.manual_seed(0)
    tok = CharTokenizer.train([s + t for s, t in PAIRS])
    target = tok if shared else CharTokenizer.train([t for _, t in PAIRS])
    enc = BackboneConfig(
        vocab_size=tok.vocab_size, embedding_dim=10, hidden_size=7, bidirectional=True
    )
    cfg = tr.TranslatorConfig(
        encoder=enc, shared_vocab=shared, target_vocab_size=0 if shared else target.vocab_size
    )
    model = tr.Translator(cfg, tok, target).eval()
    old_names = {
        "decoder.rnn.rnn.": "decoder.rnn.",  # today's Decoder.rnn was the translator's `decoder`
        "decoder.target_embedding.": "tgt_embedding.",
        "decoder.bridge.": "bridge.",
        "decoder.attention.": "attention.",
        "decoder.combine.": "combine.",
        "decoder.out_bias": "out_bias",
    }

    def legacy(key: str) -> str:
        for new, old in old_names.items():
            if key.startswith(new):
                return old + key[len(new) :]
        return key

    tensors = {legacy(k): v for k, v in model.state_dict().items()}
    assert not any(k.startswith("decoder.") and not k.startswith("decoder.rnn.") for k in tensors)
    assert ("tgt_embedding.embed.weight" in tensors) != shared
    old = tmp_path / "legacy.safetensors"
    checkpoint.save(
        old,
        tensors,
        task="translator",
        config=cfg.to_dict(),
        tokenizer=tok,
        extra=model.extra_metadata(),
    )
    again = tr.Translator.load(checkpoint.read_header(old))
    assert again.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    lines = ["A dog is running in the park .", "Two men ."]
    assert again.translate(lines, beam=3, n_best=2) == model.translate(lines, beam=3, n_best=2)
    if shared:  # the shipped checkpoint holds exactly these legacy names
        from safetensors import safe_open

        shipped = ROOT / "checkpoints" / "translate-en-de.safetensors"
        header = checkpoint.read_header(shipped)
        fresh = tr.Translator(tr.TranslatorConfig.from_dict(header.config), tok)
        with safe_open(str(shipped), "pt") as f:
            assert set(f.keys()) == {legacy(k) for k in fresh.state_dict()}


def _trap():
    """Greedy's first choice (A, p .6) leads only to poor endings; B (p .4) ends at once."""
    EOS, A, B = 3, 4, 5
    table = {
        2: {A: 0.6, B: 0.4},
        A: {EOS: 0.34, A: 0.33, B: 0.33},
        B: {EOS: 0.99, A: 0.005, B: 0.005},
    }

    def step(tokens, state):
        logp = torch.full((len(tokens), 6), -1e9)
        for r, t in enumerate(tokens.tolist()):
            for nxt, p in table.get(t, {EOS: 1.0}).items():
                logp[r, nxt] = math.log(p)
        return logp, state

    return step


def test_beam_finds_higher_scoring_hypothesis_than_greedy():
    step = _trap()
    state = torch.zeros(1, 1)  # a state with a batch dimension, carried unchanged
    max_len = torch.tensor([5])
    g = decoding.decode(step, state, decoding.Greedy(1, 2, 3, max_len))[0]
    beam = decoding.Beam(1, 2, 3, max_len, beam=3, alpha=0.0, n_best=3)
    beams = decoding.decode(step, state, beam, lambda s, i: s.index_select(0, i))[0]
    assert g.ids == [4]  # greedy took A, then its best ending
    assert g.logprob == pytest.approx(math.log(0.6) + math.log(0.34))
    assert beams[0].ids == [5]
    assert beams[0].logprob == pytest.approx(math.log(0.4) + math.log(0.99))
    assert beams[0].logprob > g.logprob
    assert len(beams) == 3 and beams[0].score >= beams[1].score >= beams[2].score
    with pytest.raises(Exception, match="n-best"):
        decoding.Beam(1, 2, 3, max_len, beam=2, n_best=3)


def test_beam_respects_max_length():
    def step(tokens, state):  # never wants to stop
        logp = torch.full((len(tokens), 6), -5.0)
        logp[:, 4] = -0.01
        return logp, state

    beam = decoding.Beam(2, 2, 3, torch.tensor([3, 6]), beam=2)
    out = decoding.decode(step, torch.zeros(2, 1), beam, lambda s, i: s.index_select(0, i))
    assert [len(o[0].ids) for o in out] == [3, 6]
    greedy = decoding.Greedy(2, 2, 3, torch.tensor([3, 6]))
    g = decoding.decode(step, torch.zeros(2, 1), greedy)
    assert [len(h.ids) for h in g] == [3, 6]


# -- CLI: train, translate, eval ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_translator(tmp_path_factory):
    out = tmp_path_factory.mktemp("tr") / "tiny.safetensors"
    r = run_cli(
        "train",
        "translator",
        SAMPLE,
        "--dev",
        SAMPLE,
        "-o",
        out,
        *TINY,
        "--vocab-size",
        "300",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--batch-size",
        "16",
        "--warmup",
        "5",
        "--lr",
        "0.01",
        "--teacher-forcing",
        "0.5",
        "--teacher-forcing-schedule",
        "linear",
    )
    assert r.code == 0, r
    assert "bleu" in r.err and "loss_free_running" in r.err
    return out


def test_translate_streams_in_order_with_empty_lines(tiny_translator):
    lines = ["A dog is running in the park .", "", "Two men are eating at the beach .", "   "]
    r = run_cli(
        "translate", "-m", tiny_translator, "--beam", "2", "-b", "1", stdin="\n".join(lines) + "\n"
    )
    assert r.code == 0, r
    out = r.out.split("\n")
    assert len(out) == len(lines) + 1 and out[-1] == ""
    assert out[1] == "" and out[3] == "" and out[0] != ""
    # Batching does not change results or order.
    r2 = run_cli(
        "translate", "-m", tiny_translator, "--beam", "2", "-b", "16", stdin="\n".join(lines) + "\n"
    )
    assert r2.out == r.out


def test_translate_jsonl_nbest(tiny_translator, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("A child is sleeping in the snow .\nA woman is playing .\n")
    r = run_cli(
        "translate", f, "-m", tiny_translator, "--beam", "4", "--n-best", "3", "--format", "jsonl"
    )
    assert r.code == 0, r
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [x["source"] for x in rows] == f.read_text().splitlines()
    for x in rows:
        scores = [h["score"] for h in x["translations"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    text = run_cli("translate", f, "-m", tiny_translator, "--beam", "4", "--n-best", "3")
    assert len(text.out.splitlines()) == 6


def test_eval_bleu_chrf_json(tiny_translator):
    r = run_cli("eval", tiny_translator, SAMPLE, "--format", "json", "--beam", "3")
    assert r.code == 0, r
    m = json.loads(r.out)
    assert {"bleu", "chrf", "loss_teacher_forced", "loss_free_running"} <= set(m)
    assert m["beam"] == 3 and m["sentences"] == len(PAIRS)
    t = run_cli("eval", tiny_translator, SAMPLE, "--beam", "1")
    # The table and the summary line are the result: stdout (issue 16, item 2; was stderr).
    assert t.code == 0 and "BLEU" in t.out and "free-running" in t.out


def test_checkpoint_round_trip(tiny_translator, tmp_path):
    model = tr.Translator.load(checkpoint.read_header(tiny_translator))
    lines = ["A dog is eating on the street .", "Three girls are sitting ."]
    before = model.translate(lines, beam=3)
    model.save(tmp_path / "again.safetensors")
    again = tr.Translator.load(checkpoint.read_header(tmp_path / "again.safetensors"))
    assert again.config == model.config
    assert again.translate(lines, beam=3) == before
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_separate_vocabularies_round_trip(tmp_path):
    out = tmp_path / "sep.safetensors"
    r = run_cli(
        "train",
        "translator",
        "--source",
        tmp_path / "s.txt",
        "--target",
        tmp_path / "t.txt",
        "-o",
        out,
        stdin="",
    )
    assert r.code == 2 and "no such file" in r.err
    (tmp_path / "s.txt").write_text("".join(s + "\n" for s, _ in PAIRS))
    (tmp_path / "t.txt").write_text("".join(t + "\n" for _, t in PAIRS))
    r = run_cli(
        "train",
        "translator",
        "--source",
        tmp_path / "s.txt",
        "--target",
        tmp_path / "t.txt",
        "-o",
        out,
        *TINY,
        "--separate-vocab",
        "--vocab-size",
        "300",
        "--steps",
        "4",
        "--attention",
        "none",
        "--cell",
        "gru",
        "--save-dtype",
        "fp16",
    )
    assert r.code == 0, r
    model = tr.Translator.load(checkpoint.read_header(out))
    assert model.target_tokenizer is not model.tokenizer
    assert model.decoder.target_embedding is not None and model.decoder.attention is None
    r = run_cli("translate", "-m", out, "--beam", "2", stdin="A dog .\n")
    assert r.code == 0 and len(r.out.splitlines()) == 1


# -- bad input ---------------------------------------------------------------------------------


def test_tsv_line_without_tab_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("A dog .\tEin Hund .\nno tab here\n")
    r = run_cli("train", "translator", bad, "-o", tmp_path / "m.safetensors", *TINY)
    assert r.code == 2
    assert f"{bad}:2:" in r.err and "no tab" in r.err
    assert r.err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "m.safetensors").exists()


def test_unequal_parallel_files(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    r = run_cli(
        "train",
        "translator",
        "--source",
        tmp_path / "a.en",
        "--target",
        tmp_path / "a.de",
        "-o",
        tmp_path / "m.safetensors",
        *TINY,
    )
    assert r.code == 2 and "3 lines" in r.err and "2" in r.err


def test_wrong_task_checkpoint(tmp_path):
    lm = tmp_path / "lm.safetensors"
    checkpoint.save(lm, {"w": torch.zeros(1)}, task="lm", config={})
    r = run_cli("translate", "-m", lm, stdin="A dog .\n")
    assert r.code == 2
    assert "lm checkpoint" in r.err and "translator" in r.err and r.out == ""


def test_long_source_is_translated_with_bounded_length(tiny_translator):
    model = tr.Translator.load(checkpoint.read_header(tiny_translator))
    long = " ".join(["A dog is running in the park ."] * 40)
    src = model.encode_source(long)
    for beam, ratio, limit in ((2, None, 2 * len(src) + 10), (1, 0.01, int(0.01 * len(src)) + 10)):
        (h,) = model.decode_ids([src], beam=beam, max_ratio=ratio)[0]
        assert 0 < len(h.ids) <= limit
    short = run_cli(
        "translate",
        "-m",
        tiny_translator,
        "--beam",
        "1",
        "--max-length-ratio",
        "0.01",
        stdin=long + "\n",
    )
    full = run_cli("translate", "-m", tiny_translator, "--beam", "1", stdin=long + "\n")
    assert short.code == 0 and full.code == 0 and len(short.out.splitlines()) == 1
    assert len(short.out) < len(full.out)


def test_shipped_model_is_the_default():
    r = run_cli("translate", "--beam", "2", stdin="A dog is running in the snow .\n\nTwo men .\n")
    assert r.code == 0, r
    out = r.out.split("\n")
    assert len(out) == 4 and out[1] == ""
    assert "Hund" in out[0] and "Schnee" in out[0]
    header = checkpoint.read_header(ROOT / "checkpoints" / "translate-en-de.safetensors")
    assert header.task == "translator" and header.metadata["storage_dtype"] == "fp16"


# -- inputs are read as what they are (issue 16, item 3) -------------------------------------


def test_a_tsv_file_is_translated_by_its_source_column(tiny_translator, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("A dog .\tEin Hund .\nTwo men .\tZwei Männer .\n")
    src = tmp_path / "src.txt"
    src.write_text("A dog .\nTwo men .\n")
    args = ("translate", "-m", tiny_translator, "--beam", "2", "--format", "jsonl")
    by_name, plain = run_cli(*args, pairs), run_cli(*args, src)
    assert by_name.code == 0 and by_name.out == plain.out, by_name
    assert [json.loads(x)["source"] for x in by_name.out.splitlines()] == ["A dog .", "Two men ."]
    piped = run_cli(*args, "--input-format", "tsv", stdin=pairs.read_text())
    assert piped.out == plain.out
    whole = run_cli(*args, "--input-format", "text", pairs)  # explicit: whole lines
    assert json.loads(whole.out.splitlines()[0])["source"] == "A dog .\tEin Hund ."


def test_translate_bad_options_and_directories(tiny_translator, tmp_path):
    for extra, needle in (
        ([str(tmp_path)], f"{tmp_path}: is a directory"),
        (["--input-format", "csv"], "--input-format"),
        (["--encoding-errors", "bogus"], "--encoding-errors"),
    ):
        r = run_cli("translate", "-m", tiny_translator, *extra, stdin="A dog .\n")
        assert r.code == 2 and r.out == "" and r.err.count("\n") == 1 and needle in r.err, r
