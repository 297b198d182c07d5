"""One flag vocabulary: --model (alias --weights) for model files, --out for outputs, --json [PATH] alike."""
import argparse

import pytest

from nanogfl.cli import SUBCOMMANDS, build_parser

MODEL_COMMANDS = ("val", "predict", "demo", "benchmark", "export", "import", "info")
OUT_COMMANDS = ("train", "data-check", "predict", "demo", "export", "import")
JSON_COMMANDS = ("val", "data-check", "predict", "benchmark", "info")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings}


def test_every_subcommand_is_a_module_with_parser_and_adapter():
    assert len(SUBCOMMANDS) == len(subparsers())
    for module in SUBCOMMANDS:
        assert callable(module.add_parser) and callable(module.run)


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_files_are_model_with_a_weights_alias(command):
    flags = options(subparsers()[command])
    assert flags["--model"] is flags["--weights"] and flags["--model"].dest == "model"


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_outputs_are_out(command):
    assert "--out" in options(subparsers()[command])


@pytest.mark.parametrize("command", JSON_COMMANDS)
def test_json_takes_an_optional_path_meaning_stdout_when_absent(command):
    parser = subparsers()[command]
    action = options(parser)["--json"]
    assert action.nargs == "?" and action.const == "-"


def test_no_namespace_reaches_the_library():
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "nanogfl"
    for path in package.rglob("*.py"):
        if path.parent.name == "cli":
            continue
        assert "Namespace" not in path.read_text(), path
        ast.parse(path.read_text())
