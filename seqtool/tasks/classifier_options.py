"""The options of `seqtool train classifier`, declared once: ClassifierOptions (data and
setup; its docstring is the command's help) and ClassifierConfig (the model's, stored in its
checkpoints). `seqtool train classifier` is generated from them (cli/options.py)."""

from __future__ import annotations

from dataclasses import dataclass

from seqtool.backbone.encoder import POOLS
from seqtool.config import (
    BackboneConfig,
    _Config,
    backbone_field,
    opt,
    tokenizer_opt,
    tokenizer_sample_opt,
)
from seqtool.errors import ConfigError

SELECT = ("mean", "pooled")  # how several dev sets rank checkpoints


@dataclass(frozen=True)
class ClassifierOptions(_Config):
    """Train a text classifier (bidirectional LSTM by default) on labelled CSV/TSV/JSONL.

    Examples (few steps, so each runs in seconds):

      seqtool train classifier corpora/sentiment-sample.csv --steps 40 --threads 1 -o sent.safetensors

      awk 'NR == 1 || NR % 5' corpora/sentiment-sample.csv > train.csv

      awk 'NR == 1 || NR % 5 == 0' corpora/sentiment-sample.csv > dev.csv

      seqtool train classifier train.csv --dev dev.csv --pool max --ngrams 2 --steps 40 --threads 1 -o ngrams.safetensors

      sed '1s/text,label/review,stars/' train.csv > reviews.csv

      seqtool train classifier reviews.csv --text-column review --label-column stars --max-length 64 --steps 20 --threads 1 -o stars.safetensors

      seqtool train lm corpora/play-sample.txt --hidden 64 --steps 20 --threads 1 -o fwd.safetensors

      seqtool train lm corpora/play-sample.txt --hidden 64 --steps 20 --threads 1 --reverse -o bwd.safetensors

      seqtool train classifier train.csv --dev dev.csv --init-from fwd.safetensors --init-from bwd.safetensors --steps 20 --threads 1 -o both.safetensors

      seqtool train classifier train.csv --init-from checkpoints/sentiment.safetensors --steps 5 --threads 1 -o tuned.safetensors
    """

    files: list[str] = opt(
        help="Labelled CSV/TSV/JSONL file(s) (columns text,label by default).", argument=True
    )
    dev: list[str] | None = opt(
        None, "Dev file(s) for evaluation; repeat for several (each also reported alone)."
    )
    dev_fraction: float = opt(
        0.05,
        "Hold out this random fraction of the training rows when --dev is not given (0: none).",
    )
    select: str = opt(
        "mean",
        "With several --dev sets, keep the checkpoint with the best mean of their accuracies "
        "(mean: each set counts the same) or the best accuracy over all their rows together "
        "(pooled: a big set outweighs a small one).",
    )
    text_column: str = opt("text", "Column (CSV/TSV header or JSON key) holding the text.")
    label_column: str = opt("label", "Column holding the label (any strings; two or more classes).")
    score_column: str | None = opt(
        None,
        "Learn soft targets: this column (in [0, 1], as `pseudo-label` writes it) is the "
        "probability the row's label should get, the rest spread over the other labels "
        "(distillation from a teacher). Files without the column train on their labels as "
        "certain.",
    )
    tokenizer: str = tokenizer_opt("unigram", "the training texts")
    vocab_size: int = opt(16000, "Vocabulary size for bpe/unigram.")
    tokenizer_sample: int = tokenizer_sample_opt("row")
    max_tokens: int = opt(
        0, "Cap tokens per batch (longest x count); 0: --batch-size texts per batch."
    )
    calibration: str = opt(
        "length",
        "How the best checkpoint's probabilities are calibrated on the dev set(s) once "
        "training ends: length (a temperature that depends on the text's length) | "
        "temperature (one temperature) | none.",
    )
    init_from: list[str] | None = opt(
        None,
        "Start embedding + recurrent layers from this LM checkpoint (its tokenizer and sizes "
        "are used). Give it twice, a forward LM and a `train lm --reverse` one, to start each "
        "direction from its own LM. Or fine-tune a classifier checkpoint (e.g. the shipped "
        "sentiment model) on new data: its tokenizer, model options, labels and weights are "
        "used.",
    )


@dataclass(frozen=True)
class ClassifierConfig(_Config):
    backbone: BackboneConfig = backbone_field(bidirectional=True)
    num_labels: int = opt(2, cli=False)
    pool: str = opt("last", "last (final forward+backward states) | max | mean (over real tokens).")
    head_dropout: float = opt(0.3, "Dropout before the output layer.")
    max_length: int = opt(  # tokens kept per text, head + tail (the CLI's default is 256)
        0, "Tokens kept per text: the first quarter and the last three quarters (0: all)."
    )
    lowercase: bool = opt(
        False, "Fold case before tokenizing (stored in the model).", flags=("--lowercase",)
    )
    normalize: bool = opt(
        False,
        "Split punctuation and clitics off words (don't -> do n't) and drop <br /> before "
        "tokenizing, so raw and PTB-tokenized texts share word forms (stored in the model).",
        flags=("--normalize",),
    )
    ngrams: int = opt(
        0,
        "Add a fastText-style bag of hashed token n-grams up to this order beside the "
        "recurrent backbone (2: tokens and token pairs; 0: none). It reads the whole text, "
        "learns on its own loss, and its log-probabilities are averaged with the backbone's: "
        "an ensemble in one model that costs little time.",
    )
    ngram_buckets: int = opt(
        262_144, "Hash buckets for the n-grams of --ngrams (rows of its table)."
    )
    ngram_dim: int = opt(8, "Vector size of the --ngrams bag.")

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ConfigError(f"pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if self.num_labels < 2:
            raise ConfigError("a classifier needs at least two labels")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head dropout must be in [0, 1), not {self.head_dropout}")
        if self.max_length < 0 or 0 < self.max_length < 4:
            raise ConfigError(f"max length must be 0 (no limit) or >= 4, not {self.max_length}")
        if not 0 <= self.ngrams <= 4:
            raise ConfigError(f"ngrams must be 0 (off) to 4, not {self.ngrams}")
        if self.ngram_buckets < 1 or self.ngram_dim < 1:
            raise ConfigError("ngram buckets and ngram dim must be >= 1")
