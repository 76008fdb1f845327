"""The foundation package never imports the packages built on it (only `sqa/cli.py`, lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPENDENT_PACKAGES = {"rankers", "se_finetune"}


def _imported_top_levels(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            # importlib.import_module("rankers...") with a literal counts as an import too.
            names.add(str(node.args[0].value).split(".")[0])
    return names


def _string_literals(tree: ast.AST) -> set[str]:
    return {
        node.value.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@pytest.mark.parametrize("path", sorted((ROOT / "sqa").rglob("*.py")), ids=str)
def test_sqa_does_not_import_dependent_packages(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = _imported_top_levels(tree)
    if path.name == "cli.py" and path.parent.name == "sqa":
        # The CLI names subcommand modules as strings and imports them lazily; no static import.
        assert not (imported & DEPENDENT_PACKAGES)
        return
    assert not (imported & DEPENDENT_PACKAGES), f"{path} imports {imported & DEPENDENT_PACKAGES}"
    assert not (_string_literals(tree) & DEPENDENT_PACKAGES), f"{path} names a dependent package"


def test_scanner_detects_a_forbidden_import() -> None:
    tree = ast.parse("import rankers.model\nfrom se_finetune import losses\n")
    assert _imported_top_levels(tree) >= DEPENDENT_PACKAGES


def test_sqa_modules_exist() -> None:
    assert (ROOT / "sqa" / "cli.py").exists()
