"""`seqtool inspect trace | gradients | params | cells`: the RNN/LSTM/GRU lessons, run on real
models.

Tables and charts are the result: stdout (`--format jsonl`: every number); status: stderr.
The work is done by `seqtool.inspect`, imported inside each command: no torch on import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from seqtool.cli._common import status, stdin_is_terminal, write
from seqtool.cli._entry import verbatim_examples
from seqtool.cli.evaluate import print_results
from seqtool.cli.inspect_options import (
    CellsOptions,
    GradientsOptions,
    ParamsOptions,
    TraceOptions,
)
from seqtool.cli.options import run_command
from seqtool.errors import SeqtoolError

app = typer.Typer(
    help=verbatim_examples(
        "Look inside recurrent networks: hidden states and gates step by step, gradient decay "
        "through time, parameter counts per cell, the cells that follow a feature of the text."
        "\n\nExamples:\n\n"
        '  seqtool inspect trace "To be, or not" --layer 0\n\n'
        "  seqtool inspect gradients --cells rnn,lstm,gru --length 30\n\n"
        "  seqtool inspect params checkpoints/sentiment.safetensors"
    ),
    no_args_is_help=True,
)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "jsonl"):
        raise SeqtoolError(f"--format must be table or jsonl, not {fmt!r}")


def _stdin_lines() -> list[str]:
    from seqtool.data.text import iter_lines

    lines = [ln for ln in iter_lines("-") if ln.strip()]
    if not lines:
        raise SeqtoolError("no text on stdin")
    return lines


def _check_device(device: str) -> None:
    """The traces and gradients are the lesson equations in float64 on the CPU: an
    accelerator is refused, not silently ignored."""
    if device not in ("auto", "cpu"):
        raise SeqtoolError(
            f"--device {device}: inspect runs the lesson equations in float64 on the CPU; "
            "use --device cpu (or auto)"
        )


def _load(model: str | None, device: str = "cpu") -> Any:
    from seqtool import api, paths

    _check_device(device)
    return api.load(model or str(paths.default_model("lm")), device="cpu")


@app.command("trace")
@run_command(TraceOptions)
def trace(o: TraceOptions) -> None:
    """Step TEXT through a model's encoder and show, per token and layer, the hidden state,
    the LSTM cell state and each gate's activation.

    The states come from the lesson equations (backbone/cells.py) run on the checkpoint's own
    weights; the status line reports how closely they match the fused torch module.

    Examples:

      seqtool inspect trace "the cat sat"   # the shipped LM

      seqtool inspect trace "This movie was great" -m checkpoints/sentiment.safetensors --layer 0 --format jsonl

      echo "the cat sat" | seqtool inspect trace -m checkpoints/lm-shakespeare.safetensors --layer 1 --units
    """
    from seqtool.inspect import render
    from seqtool.inspect.trace import trace as run_trace
    from seqtool.training import runtime

    _check_format(o.fmt)
    _check_device(o.device)
    runtime.set_threads(o.threads)
    if o.text is None and stdin_is_terminal():
        raise SeqtoolError("give TEXT as an argument or pipe it on stdin")
    texts = _stdin_lines() if o.text in (None, "-") else [o.text]
    m = _load(o.model, o.device)
    for i, t in enumerate(texts):
        tr = run_trace(m, t, sorted(set(o.layer)) if o.layer else None)
        status(render.trace_status(m.task, tr))
        if o.fmt == "jsonl":
            for obj in render.trace_records(tr, i):
                write(json.dumps(obj) + "\n", flush=True)
        else:
            print_results(*render.trace_tables(tr, o.units, o.top))


@app.command("gradients")
@run_command(GradientsOptions)
def gradients(o: GradientsOptions) -> None:
    """Measure how gradient decays back through time: back-propagate a loss at the last
    step and report ‖∂L/∂h_t‖ against the distance from it, the decay per step and the
    "effective memory" (the distance where the norm falls below 1e-3 of its last-step value).

    The loss is a random linear readout of the last output; inputs are N(0, 1) vectors (or
    the model's own inputs for TEXT); computed in float64 through the lesson equations.

    Examples:

      seqtool inspect gradients --cells rnn,lstm,gru --length 100 --hidden 64

      seqtool inspect gradients --cells rnn --weight-scale 4 --clip 1   # explodes, then clipped

      seqtool inspect gradients --cells rnn,lstm,gru --plot decay.png

      seqtool inspect gradients --model checkpoints/lm-shakespeare.safetensors "To be, or not to be, that is the question"
    """
    from seqtool.inspect import render  # torch-free: the checks below fail fast

    _check_format(o.fmt)
    _check_device(o.device)
    if not 0 < o.threshold < 1:
        raise SeqtoolError(f"--threshold must be in (0, 1), not {o.threshold}")
    if o.plot:
        render.check_plot(o.plot)  # before torch loads and the curves are computed
    from seqtool.inspect import gradients as grad
    from seqtool.training import runtime

    runtime.set_threads(o.threads)
    if o.model is None:
        if o.text is not None:
            raise SeqtoolError("TEXT needs --model (fresh cells run on random inputs)")
        curves = grad.fresh_gradients(
            grad.parse_cells(o.cells), o.length, o.hidden, o.input_size, o.layers, o.batch,
            o.weight_scale, o.clip, o.repeats, o.seed, o.init, o.threshold,
        )  # fmt: skip
        what = render.fresh_setup(curves[0].settings)
    else:
        texts = None if o.text is None else (_stdin_lines() if o.text == "-" else [o.text])
        m = _load(o.model, o.device)
        curves = grad.model_gradients(
            m, texts, o.length, o.layer, o.weight_scale, o.clip, o.repeats, o.seed, o.threshold
        )
        src = "given text" if texts else f"random {o.length}-token sequences"
        what = render.model_setup(o.model, m.task, curves[0].settings, src)
    if o.fmt == "jsonl":
        for c in curves:
            write(json.dumps(render.curve_record(c)) + "\n", flush=True)
    else:
        print_results(what, render.gradient_table(curves), render.terminal_chart(curves))
    if o.plot:
        render.plot(curves, o.plot, what)
        status(f"wrote {o.plot}")


@app.command("params")
@run_command(ParamsOptions)
def params(o: ParamsOptions) -> None:
    """Count parameters per component (embedding, each layer and direction, heads) of a
    checkpoint or of a recurrent stack of the given sizes; for sizes, also compare the three
    cells (LSTM = 4x, GRU = 3x a vanilla RNN) against the lesson's formula.

    Examples:

      seqtool inspect params --cell lstm --input 10 --hidden 64 --layers 2

      seqtool inspect params checkpoints/sentiment.safetensors

      seqtool inspect params checkpoints/lm-shakespeare.safetensors --format jsonl | jq .params
    """
    from seqtool.inspect import params as counts
    from seqtool.inspect import render

    _check_format(o.fmt)
    _check_device(o.device)
    if o.model is not None:
        m = _load(o.model, o.device)
        title = f"{o.model} ({m.task})"
        compare = None
    else:
        if o.input_size < 1:
            raise SeqtoolError(f"--input must be >= 1, not {o.input_size}")
        m = counts.config_model(
            o.cell,
            o.input_size,
            o.hidden,
            o.layers,
            o.bidirectional,
            o.vocab,
            o.input_size if o.vocab else None,
        )
        title = render.sizes_title(
            o.cell, o.input_size, o.hidden, o.layers, o.bidirectional, o.vocab
        )
        compare = counts.compare_cells(o.input_size, o.hidden, o.layers, o.bidirectional)
    rows, total = counts.checked_counts(m)
    if o.fmt == "jsonl":
        for obj in render.param_records(rows, total, compare):
            write(json.dumps(obj) + "\n")
        return
    shown = [title, render.params_table(rows, total)]
    if compare:
        shown += [render.cells_table(compare), render.CELLS_FORMULA]
    print_results(*shown)


def _is_path(arg: str) -> bool:
    """TEXT names a file (or folder) that exists; a long or odd text is just text."""
    try:
        return "\n" not in arg and Path(arg).exists()
    except (OSError, ValueError):  # too long for a file name, or a NUL in it
        return False


@app.command("cells")
@run_command(CellsOptions)
def cells(o: CellsOptions) -> None:
    """Find the units that follow features of the text (the line position, quotes, brackets,
    your own regexes) and colour the text by them (Karpathy, Johnson & Fei-Fei 2015).

    Every unit of every layer, direction and state (h; c for an LSTM) is correlated with each
    probe over the text (Pearson r over tokens, in one streaming pass: a 1 MB text runs in
    bounded memory). Layers are numbered as `inspect trace` numbers them. A probe that is
    constant on the text, or a regex that never matches, is skipped with its reason. With a
    classifier and a labelled table, the "label" probe also finds the unit whose pooled value
    alone best separates the two labels (Radford et al. 2017's sentiment unit), beside the
    full model's accuracy.

    Examples:

      seqtool inspect cells corpora/play-sample.txt --html cells.html

      seqtool inspect cells corpora/play-sample.txt --probe 'who=^[A-Z ]+:$'

      seqtool inspect cells corpora/play-sample.txt --unit 1:417:c --png c.png

      seqtool inspect cells corpora/sentiment-sample.csv -m sentiment --top 3
    """
    from seqtool.data.text import check_input_path, display_name, read_text
    from seqtool.inspect import cells_page as page
    from seqtool.inspect.cells_probes import parse_probes
    from seqtool.inspect.cells_run import is_table, parse_unit

    _check_format(o.fmt)
    _check_device(o.device)
    probes = parse_probes(o.probe or [])
    chosen = [parse_unit(u) for u in o.unit or []]
    for flag, v in (("--top", o.top), ("--show", o.show), ("--warmup", o.warmup + 1)):
        if v < 1:
            raise SeqtoolError(f"{flag} must be >= 1")
    if o.streams < 0:
        raise SeqtoolError("--streams must be >= 0 (0: by length)")
    for flag, out in (("--html", o.html), ("--png", o.png)):
        if out is not None and not Path(out).expanduser().resolve().parent.is_dir():
            raise SeqtoolError(f"{flag} {out}: the folder does not exist")
    if o.png:
        page.check_png(o.png)  # before torch loads and the text is read
    if o.text is None and stdin_is_terminal():
        raise SeqtoolError("give TEXT or a FILE as an argument, or pipe text on stdin")
    arg = o.text or "-"
    is_file = arg == "-" or _is_path(arg)
    name = display_name(arg) if is_file else "TEXT"
    table = str(check_input_path(arg)) if arg != "-" and is_file and is_table(arg) else None
    text = "" if table else (read_text(arg) if is_file else arg)

    from seqtool.inspect import cells_run
    from seqtool.training import runtime

    runtime.set_threads(o.threads)
    m = _load(o.model, o.device)
    rep = cells_run.run(
        m, text, name, probes, o.top, o.show, o.streams, o.warmup, table, status, chosen
    )
    st = rep.stats
    for probe, why in st.skipped.items():
        status(f"probe {probe} skipped: {why}")
    status(
        f"{st.tokens:,} tokens in {rep.seconds:.1f} s ({st.tokens / max(rep.seconds, 1e-9):,.0f}"
        f"/s); " + page.facts_line(st, name, o.model or "lm-shakespeare")[0]
    )
    if st.tokens < 500:
        status(f"warning: r over only {st.tokens} tokens is noisy; give more text")
    if rep.label_note:
        status(f"probe label skipped: {rep.label_note}")
    if o.fmt == "jsonl":
        for obj in page.records(rep.ranked, st.tokens):
            write(page.to_json(obj) + "\n")
        for u in rep.label_units:
            write(page.to_json(page.label_record(u, rep.model_accuracy)) + "\n")
    else:
        shown = [page.table(rep.ranked, f"units that follow each probe ({name})")]
        if rep.label_units:
            shown.append(page.label_table(rep.label_units, rep.model_accuracy))
        print_results(*shown)
    if o.html or o.png:
        strips = page.strips(st, rep.ranked, chosen, rep.label_units)
        tokens = page.shown_tokens(rep.source, st.shown.size(0))
        title = f"inspect cells: {o.model or 'lm-shakespeare'} on {name}"
        if o.html:
            from seqtool.data.atomic import write_bytes

            facts = page.facts_line(st, name, o.model or "lm-shakespeare")
            for u in rep.label_units[:1]:
                facts.append(
                    f"label: the best one-unit classifier is {page.unit_label(u)}, accuracy "
                    f"{u.accuracy:.3f} (threshold fit on the table); the full model: "
                    f"{rep.model_accuracy:.3f}"
                )
            doc = page.page(title, facts, rep.ranked, st.skipped, strips, tokens)
            write_bytes(o.html, doc.encode("utf-8"))
            status(f"wrote {o.html} ({len(strips)} units over {len(tokens):,} tokens)")
        if o.png:
            page.draw_png(o.png, title, strips, tokens)
            status(f"wrote {o.png}")
