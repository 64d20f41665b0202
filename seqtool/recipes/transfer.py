"""Transfer into a classifier (`train classifier --init-from`): ULMFiT-style from one or two
language models' tokenizer, embedding and recurrent weights, or fine-tuning a classifier
checkpoint (its tokenizer, config, labels and every weight) on new data.

Two LMs are a forward one and a `train lm --reverse` one: the forward direction of the
bidirectional classifier becomes the forward LM and its backward direction the backward LM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from seqtool.errors import SeqtoolError

EMBED = "backbone.embedding.embed.weight"  # the token table in a backbone's state dict
RNN = "backbone.rnn.rnn."  # the fused recurrent stack's weights


def init_headers(init_from: str | Sequence[str] | None) -> tuple[Any, Any, Any]:
    """(forward LM, backward LM, classifier) headers from --init-from files, each None when
    not given: one classifier to fine-tune, or one or two LMs (two must be one forward and
    one `--reverse` LM with the same tokenizer and sizes)."""
    from seqtool import checkpoint

    paths = [init_from] if isinstance(init_from, str) else list(init_from or [])
    if len(paths) > 2:
        raise SeqtoolError("--init-from takes at most two LMs: a forward and a --reverse one")
    heads = []
    for p in paths:
        header = checkpoint.read_header(p)
        checkpoint.expect_task(header, ("lm", "classifier"), "train classifier --init-from")
        heads.append(header)
    if any(h.task == "classifier" for h in heads):
        if len(heads) > 1:
            raise SeqtoolError("--init-from: a classifier to fine-tune comes alone, without LMs")
        return None, None, heads[0]
    fwd = [h for h in heads if not h.config.get("reverse")]
    bwd = [h for h in heads if h.config.get("reverse")]
    if len(fwd) > 1 or len(bwd) > 1:
        which = "forward" if len(fwd) > 1 else "--reverse"
        raise SeqtoolError(
            f"--init-from: {paths[0]} and {paths[1]} are both {which} LMs; give one forward "
            "and one --reverse LM"
        )
    if len(heads) == 2:
        a, b = (h.config["backbone"] for h in heads)
        for k in ("hidden_size", "layers", "cell"):
            if a[k] != b[k]:
                raise SeqtoolError(
                    f"--init-from: {paths[0]} has {k} {a[k]} but {paths[1]} has {b[k]}"
                )
        if (
            checkpoint.load_tokenizer(heads[0]).to_bytes()
            != checkpoint.load_tokenizer(heads[1]).to_bytes()
        ):
            raise SeqtoolError(f"--init-from: {paths[0]} and {paths[1]} use different tokenizers")
    return (fwd[0] if fwd else None), (bwd[0] if bwd else None), None


def fine_tune_start(model: Any, header: Any, classes: Sequence[str]) -> None:
    """Start `model` (built from the classifier checkpoint `header`'s tokenizer and config)
    from all of that checkpoint's weights; the training data must have its labels."""
    from seqtool import checkpoint

    labels = header.json("labels") or []
    if set(classes) - set(labels):
        raise SeqtoolError(
            f"--init-from {header.path}: the training labels {sorted(classes)} are not the "
            f"model's {labels}"
        )
    tensors = model.upgrade_keys(checkpoint.load_tensors(header))
    model.load_state_dict(tensors, strict=True)


def lm_tokenizer(
    fwd: Any,
    bwd: Any,
    backbone: dict[str, Any],
    tokenizer: str,
    vocab_size: int,
    init_from: str | Sequence[str],
) -> Any:
    """The LMs' tokenizer; their shapes are set in `backbone` (BackboneConfig fields), since
    their weights only fit those. An explicit tokenizer file must be that same tokenizer."""
    from seqtool import checkpoint, tokenizers

    source = init_from if isinstance(init_from, str) else init_from[0]

    header = fwd or bwd
    tok = checkpoint.load_tokenizer(header)
    lm_bb = header.config["backbone"]
    for k in ("embedding_dim", "hidden_size", "layers", "cell"):
        backbone[k] = lm_bb[k]
    if fwd is not None and bwd is not None:  # the two tables side by side
        if not backbone.get("bidirectional", True):
            raise SeqtoolError(
                "--init-from with a forward and a --reverse LM needs a bidirectional classifier"
            )
        backbone["embedding_dim"] = sum(h.config["backbone"]["embedding_dim"] for h in (fwd, bwd))
    if tokenizer not in ("unigram", "bpe", "char"):
        other = tokenizers.build(tokenizer, [], vocab_size)
        if other.to_bytes() != tok.to_bytes():
            raise SeqtoolError(f"--tokenizer {tokenizer} differs from the tokenizer of {source}")
    return tok


def init_from_lm(model: Any, fwd: Any, bwd: Any) -> None:
    """ULMFiT-style start: copy the LMs' embedding and recurrent weights into `model` (a
    classifier whose backbone has the LMs' shapes, see lm_tokenizer).

    With a forward and a backward (--reverse) LM, the forward direction becomes the forward
    LM and the backward direction the backward LM, exactly: the embedding is the two LMs'
    tables side by side and each direction's input weights read only its own half (the
    other half starts at zero). With one LM, its weights also seed the other direction
    (input-to-gate weights are word-feature detectors either way; the reversed recurrence is
    relearned). Above layer 0 a direction also reads the other direction's lower states;
    those input columns start at zero so each direction begins as its LM."""
    from seqtool import checkpoint

    bidi = model.config.backbone.bidirectional
    H = model.config.backbone.hidden_size
    own = model.state_dict()
    srcs = {"": fwd or bwd, "_reverse": bwd or fwd}
    if not bidi:
        srcs = {"": fwd or bwd}
    tensors = {id(h): checkpoint.load_tensors(h) for h in (fwd, bwd) if h is not None}
    with torch.no_grad():
        # Embedding: one LM's table, or the forward and backward tables side by side.
        tables = [tensors[id(h)][EMBED] for h in (fwd, bwd) if h]
        emb = own[EMBED]
        both = torch.cat(tables, 1) if len(tables) == 2 and bidi else tables[0]
        if emb.shape != both.shape:
            raise SeqtoolError(
                f"--init-from: embedding {tuple(both.shape)} does not fit {tuple(emb.shape)}"
            )
        emb.copy_(both)
        E0 = tables[0].shape[1]  # input columns of the forward LM's embedding half
        for suffix, header in srcs.items():
            own_half = 1 if (suffix and bwd is not None and fwd is not None) else 0
            for name, value in tensors[id(header)].items():
                if name.startswith(RNN):
                    _copy_rnn(name, value, own[name + suffix], (E0, H), own_half)


def _copy_rnn(
    name: str, value: torch.Tensor, dst: torch.Tensor, widths: tuple[int, int], own_half: int
) -> None:
    """One LM recurrent weight into the classifier's: as is when the shapes agree; an input
    weight that reads more columns gets its own half (layer 0: [fwd emb | bwd emb]; above:
    [fwd states | bwd states]) and zeros elsewhere."""
    if dst.shape == value.shape:
        dst.copy_(value)
        return
    if name.startswith(RNN + "weight_ih_l"):
        width = value.shape[1]
        half = widths[0] if name.endswith("_l0") else widths[1]
        off = half * own_half if dst.shape[1] != width else 0
        if dst.shape[1] >= off + width and dst.shape[0] == value.shape[0]:
            dst.zero_()
            dst[:, off : off + width].copy_(value)
            return
    raise SeqtoolError(f"--init-from: {name} {tuple(value.shape)} does not fit {tuple(dst.shape)}")
