"""The ``sqa`` console command: one entry point, one subcommand per job.

Subcommands are found through the ``sqa.commands`` entry-point group (as model kinds are through
``sqa.models``), so the foundation never names the packages built on it, and each module is
imported only when its subcommand runs (``sqa --help`` stays fast). Every subcommand is a function
``main(argv) -> int`` that tests call directly; the first line of its docstring is its summary.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import importlib.util
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

from sqa.errors import SqaError, Terminated, describe_os_error

ENTRY_POINT_GROUP = "sqa.commands"  # pyproject: [project.entry-points."sqa.commands"]


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand lives (``module:function`` of its entry point)."""

    module: str
    function: str

    @property
    def summary(self) -> str:
        """The first line of the entry function's docstring, read without importing the module
        (``sqa --help`` stays fast and loads no package but ``sqa``)."""
        try:
            found = importlib.util.find_spec(self.module)
        except ModuleNotFoundError:
            found = None
        if found is None or not found.origin or not found.origin.endswith(".py"):
            return "(not installed)"
        tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == self.function:
                return (ast.get_docstring(node) or "").strip().split("\n")[0].rstrip(".")
        return ""


@functools.cache
def subcommands() -> dict[str, Subcommand]:
    """Every installed subcommand, in the order the distribution declares them.

    The packages built on ``sqa`` (``rankers``, ``se_finetune``, third-party plug-ins) declare
    their subcommands as ``sqa.commands`` entry points, so the foundation never names them.
    """
    found: dict[str, Subcommand] = {}
    for entry in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        module, _, function = entry.value.partition(":")
        found.setdefault(entry.name, Subcommand(module.strip(), function.strip() or "main"))
    return found


def _resolve(name: str) -> Callable[[Sequence[str]], int] | None:
    """Import a subcommand's entry point, or ``None`` if its module is not part of this build."""
    spec = subcommands()[name]
    try:
        found = importlib.util.find_spec(spec.module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        return None
    return getattr(importlib.import_module(spec.module), spec.function)


def _with_notes(text: str, error: BaseException) -> str:
    """``text`` and the notes a command attached to the error (how to resume), on one line."""
    notes = [str(note) for note in getattr(error, "__notes__", ())]
    return "; ".join([text, *notes])


def run_command(name: str, function: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Run a subcommand, turning errors into one line on stderr and a non-zero exit status.

    User errors (:class:`SqaError`) and OS errors (disk full, read-only folder, missing file:
    ``sqa score: error: cannot write OUT/x.jsonl: No space left on device``) exit with 2, or the
    error's ``exit_code``; Ctrl-C exits with 130 and SIGTERM (console command only) with 143,
    after one ``interrupted`` line that says how to resume where the command can.
    """
    from sqa.data.records import set_path_rule

    try:
        return int(function(list(argv)) or 0)
    except SqaError as error:
        print(_with_notes(f"sqa {name}: error: {error}", error), file=sys.stderr)
        return int(getattr(error, "exit_code", 2))
    except OSError as error:
        line = f"sqa {name}: error: {describe_os_error(error)}"
        print(_with_notes(line, error), file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(_with_notes(f"sqa {name}: interrupted", interrupt), file=sys.stderr)
        return 143 if isinstance(interrupt, Terminated) else 130
    finally:
        set_path_rule("auto")  # --paths holds for one command, not for the rest of the process


def _stop_on_sigterm() -> None:
    """Make SIGTERM stop the command the way Ctrl-C does (outputs kept whole, journals resumable)
    instead of killing it on the spot; a second SIGTERM kills at once."""

    def handler(signal_number: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated(f"signal {signal_number}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; subcommands parse their own arguments."""
    lines = [f"  {name:<16} {spec.summary}" for name, spec in subcommands().items()]
    parser = argparse.ArgumentParser(
        prog="sqa",
        description="Speech-quality assessment and ranking suite.",
        epilog="subcommands:\n"
        + "\n".join(lines)
        + "\n\nRun `sqa <subcommand> --help` for details.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("subcommand", nargs="?", help="one of the subcommands below")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqa`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in {"-h", "--help"}:
        build_parser().print_help()
        return 0 if arguments else 2
    if arguments[0] == "--version":
        from sqa import __version__

        print(f"sqa-suite {__version__}")
        return 0
    name, rest = arguments[0], arguments[1:]
    if argv is None:  # the console script (tests call main() with arguments and keep Python's)
        # Warnings are messages to the user: one line, not the source line of the warning call.
        warnings.formatwarning = lambda message, *_, **__: f"sqa {name}: warning: {message}\n"
        _stop_on_sigterm()
    if name not in subcommands():
        if not subcommands():
            print("sqa: error: no subcommands are installed; reinstall sqa-suite", file=sys.stderr)
            return 2
        print(f"sqa: error: unknown subcommand {name!r}; run `sqa --help`", file=sys.stderr)
        return 2
    function = _resolve(name)
    if function is None:
        print(f"sqa {name}: not available yet in this version", file=sys.stderr)
        return 2
    return run_command(name, function, rest)


if __name__ == "__main__":
    sys.exit(main())
