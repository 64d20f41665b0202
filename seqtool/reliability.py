"""The reliability diagram of a classifier (`seqtool eval MODEL DATA --plot FILE.png`): per
confidence bin, how often the model was right against how sure it said it was; a calibrated
model's bars sit on the diagonal (Guo et al. 2017, figure 1). matplotlib: the `plot` extra."""

from __future__ import annotations

from seqtool.errors import SeqtoolError


def draw(bins: list[dict[str, float]], path: str, title: str, ece: float) -> None:
    """Write a PNG: accuracy per confidence bin (bars) against the diagonal, with the gap
    shaded and the share of texts in each bin below (metrics.reliability's bins)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    from seqtool.plotting import save_png

    if not bins:
        raise SeqtoolError("nothing to draw: no labelled texts")
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = bins[0]["hi"] - bins[0]["lo"]
    lefts = [b["lo"] for b in bins]
    top.bar(lefts, [b["accuracy"] for b in bins], width=width, align="edge",
            edgecolor="black", color="C0", label="accuracy")  # fmt: skip
    gaps = [b["confidence"] - b["accuracy"] for b in bins]
    top.bar(lefts, gaps, bottom=[b["accuracy"] for b in bins], width=width, align="edge",
            color="C3", alpha=0.35, hatch="//", label="gap to confidence")  # fmt: skip
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{title}\nECE {ece:.4f}")
    top.legend(loc="upper left", fontsize=8)
    total = sum(b["count"] for b in bins)
    bottom.bar(lefts, [b["count"] / total for b in bins], width=width, align="edge",
               edgecolor="black", color="C7")  # fmt: skip
    bottom.set(xlabel="confidence (probability of the predicted label)", ylabel="share of texts")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
