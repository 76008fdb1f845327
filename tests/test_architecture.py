"""The foundation package never imports or names the packages built on it (subcommands and model
kinds are found through entry points), and the project's import graph has no cycle."""

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
    assert not (imported & DEPENDENT_PACKAGES), f"{path} imports {imported & DEPENDENT_PACKAGES}"
    assert not (_string_literals(tree) & DEPENDENT_PACKAGES), f"{path} names a dependent package"


def test_scanner_detects_a_forbidden_import() -> None:
    tree = ast.parse("import rankers.model\nfrom se_finetune import losses\n")
    assert _imported_top_levels(tree) >= DEPENDENT_PACKAGES


def test_sqa_modules_exist() -> None:
    assert (ROOT / "sqa" / "cli.py").exists()


PACKAGES = ("sqa", "rankers", "se_finetune")


def _module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at module level or inside functions (lazily)."""

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(owner(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else owner(node.module))
        graph[module] = {target for target in targets if target and target != module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or ``None`` (depth-first search with an explicit path)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _cycle(_import_graph(_module_files()))
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_the_readme_layout_names_every_package_and_module() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Layout") : text.index("## Installation details")]
    named = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "sqa").iterdir())
        if not path.name.startswith(("_", "."))
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    ]
    folders = [p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")]
    ignored = {"exp", "build", "dist", "demo_output", "__pycache__"}
    folders = [n for n in folders if n not in ignored and not n.endswith(".egg-info")]
    missing = [
        item
        for item in [*named, *folders]
        if f"`{item}" not in table and f"`{Path(item).name}" not in table
    ]
    assert not missing, f"README Layout lacks {missing}"
