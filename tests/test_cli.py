"""The `sqa` dispatcher: help, unknown subcommands, error lines and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sqa import cli
from sqa.errors import SqaError


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    output = capsys.readouterr().out
    for name in cli.subcommands():
        assert name in output


def test_no_arguments_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "subcommands" in capsys.readouterr().out


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert "unknown subcommand 'frobnicate'" in capsys.readouterr().err


def test_user_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(argv: list[str]) -> int:
        raise SqaError("something is wrong with the input")

    assert cli.run_command("demo", failing, []) == 2
    error = capsys.readouterr().err
    assert error == "sqa demo: error: something is wrong with the input\n"


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(argv: list[str]) -> int:
        open("/nonexistent/file.wav")  # noqa: SIM115
        return 0

    assert cli.run_command("score", failing, []) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_module_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sqa", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("sqa-suite ")


@pytest.mark.parametrize("name", sorted(cli.subcommands()))
def test_every_subcommand_has_help_or_says_unavailable(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = cli.main([name, "--help"])
    except SystemExit as exit_:  # argparse exits after printing help
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    if code == 0:
        assert f"sqa {name}" in captured.out
    else:
        assert "not available yet" in captured.err


def test_help_of_every_subcommand_imports_no_torch_or_scipy() -> None:
    # `sqa <subcommand> --help` must answer at once (issue 11: <= 0.5 s): building a parser may
    # not import torch or scipy (a second each), so heavy imports live inside the functions.
    script = (
        "import contextlib, io, sys\n"
        "from sqa.cli import _resolve, subcommands\n"
        "for name in subcommands():\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        _resolve(name)(['--help'])\n"
        "    heavy = [m for m in ('torch', 'scipy', 'onnxruntime') if m in sys.modules]\n"
        "    if heavy:\n"
        "        sys.exit(f'{name} --help imports {heavy}')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1:]


def test_every_option_of_every_subcommand_has_help_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    import contextlib
    import io

    from sqa.cli import _resolve, subcommands

    class ParsedError(Exception):  # stops a subcommand right after it built its parser
        pass

    undocumented: dict[str, list[str]] = {}

    def inspect(self: argparse.ArgumentParser, *_: object, **__: object) -> None:
        for action in self._actions:
            if action.option_strings and action.help is None and action.dest != "help":
                undocumented.setdefault(self.prog, []).append(action.option_strings[0])
        raise ParsedError

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", inspect)
    for name in subcommands():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(ParsedError):
            _resolve(name)([])
    assert not undocumented


def test_installed_subcommands_are_the_declared_ones() -> None:
    # A stale install (pyproject changed, `make install` not re-run) would hide a subcommand.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["entry-points"]
    installed = {name: f"{s.module}:{s.function}" for name, s in cli.subcommands().items()}
    assert installed == declared["sqa.commands"]
    summaries = [spec.summary for spec in cli.subcommands().values()]
    assert all(summary and summary != "(not installed)" for summary in summaries)
