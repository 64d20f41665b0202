"""Run commands are generated from their options dataclasses (cli/options.run_command): each
option is declared once, as a field, and the command function gets one instance."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from seqtool.cli import fields
from seqtool.cli.options import run_command
from seqtool.config import opt


@dataclass(frozen=True)
class ToyOptions:
    file: str = fields.file_argument("Input; - reads stdin.")
    model: str | None = fields.model("Which model.")
    layer: list[int] | None = opt(None, "Repeat for more.", flags=("--layer", "-l"), metavar="K")
    loud: bool = opt(False, "Shout.", flags=("--loud",))
    threads: int = fields.threads()


def _toy_app(seen: list) -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None)

    @app.command()
    @run_command(ToyOptions)
    def toy(o: ToyOptions) -> None:
        """Do the toy thing."""
        seen.append(o)

    @app.command()
    def other() -> None:  # a second command keeps `toy` a subcommand
        pass

    return app


def test_the_command_gets_one_instance_of_its_options():
    seen: list = []
    result = CliRunner().invoke(_toy_app(seen), ["toy", "in.txt", "-m", "x", "-l", "1", "-l", "2"])
    assert result.exit_code == 0, result.output
    assert seen == [ToyOptions(file="in.txt", model="x", layer=[1, 2], loud=False, threads=1)]
    seen.clear()
    assert CliRunner().invoke(_toy_app(seen), ["toy", "--loud", "--threads", "3"]).exit_code == 0
    assert seen == [ToyOptions(loud=True, threads=3)]


def test_help_comes_from_the_fields_and_the_docstring():
    result = CliRunner().invoke(_toy_app([]), ["toy", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    out = result.output
    assert "Do the toy thing." in out
    assert "-m, --model MODEL" in out and "Which model." in out
    assert "-l, --layer K" in out and "--loud" in out and "--no-loud" not in out
    assert "--threads N" in out and "[default: 1]" in out


def test_a_bad_value_is_a_usage_error():
    result = CliRunner().invoke(_toy_app([]), ["toy", "--threads", "many"])
    assert result.exit_code == 2
    assert "Invalid value for '--threads'" in result.output, result.output


RUN_COMMANDS = [
    ("seqtool.cli.lm", "generate", "GenerateOptions"),
    ("seqtool.cli.classifier", "classify", "ClassifyOptions"),
    ("seqtool.cli.tagger", "tag", "TagOptions"),
    ("seqtool.cli.translator", "translate", "TranslateOptions"),
    ("seqtool.cli.pseudo_label", "pseudo_label", "PseudoLabelOptions"),
    ("seqtool.cli.evaluate", "eval_command", "EvalOptions"),
    ("seqtool.cli.tokenize", "words", "WordsOptions"),
    ("seqtool.cli.tokenize", "sentences", "SentencesOptions"),
    ("seqtool.cli.tokenize", "encode", "EncodeOptions"),
    ("seqtool.cli.tokenize", "decode", "DecodeOptions"),
    ("seqtool.cli.tokenize", "train", "TrainOptions"),
    ("seqtool.cli.inspect", "trace", "TraceOptions"),
    ("seqtool.cli.inspect", "gradients", "GradientsOptions"),
    ("seqtool.cli.inspect", "params", "ParamsOptions"),
]


@pytest.mark.parametrize(("module", "function", "options"), RUN_COMMANDS)
def test_each_run_command_offers_exactly_its_fields(module, function, options):
    import importlib

    mod = importlib.import_module(module)
    cls = getattr(mod, options)
    cmd = typer.main.get_command_from_info(
        typer.models.CommandInfo(callback=getattr(mod, function)),
        pretty_exceptions_short=True,
        rich_markup_mode=None,
    )
    params = {p.name: p for p in cmd.params if p.name != "help"}
    assert set(params) == {f.name for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert params[f.name].default == f.default, f.name
