"""The import graph of bot/ and models/, read with `ast`: no circle, and the layout's rules.

Every import statement counts, wherever it stands: at the top, inside a function (a deferred
import hides a circle, it does not remove it) and under `if TYPE_CHECKING:` (a circle among
types is still a circle in the design). `from package import name` counts as an import of the
module `package.name` when there is one, else of `package`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = "bot.intake."  # bot.intake.<channel>: one package per channel
USE_CASES = "bot.cases"
NOT_FOR_USE_CASES = ("bot.intake", "bot.jobs", "bot.cli", "bot.app")


def module_files(root: Path) -> dict[str, Path]:
    """Every module under bot/ and models/, by its dotted name."""
    modules = {}
    for top in ("bot", "models"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lives in: the longest known module that is a prefix."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each module's imports of our own modules (bot.*, models.*), itself left out."""
    modules = module_files(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(filter(None, (_target(a.name, modules) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    target = full if full in modules else _target(base, modules)
                    if target:
                        found.add(target)
        found.discard(name)
        graph[name] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[str]:
    """One line per strongly connected group of modules (Tarjan): a shortest way round from its
    first module, a -> ... -> a, and every module in the group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [" -> ".join(_path_round(group, graph)) + f" (in the circle: {', '.join(group)})"
            for group in groups]


def _path_round(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way from the group's first module back to itself, inside the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no way round in {group}")  # Tarjan's group always has one


def _channel(module: str) -> str | None:
    return module[len(CHANNELS):].split(".")[0] if module.startswith(CHANNELS) else None


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_imports_inside_functions_under_type_checking_and_relative(
        tmp_path: Path) -> None:
    (tmp_path / "bot" / "pkg").mkdir(parents=True)
    (tmp_path / "models").mkdir()
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "bot" / "pkg" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.pkg.b import B\n"
        "def f() -> None:\n    import models.c\n"
        "from . import d\n")
    for name in ("b", "d"):
        (tmp_path / "bot" / "pkg" / f"{name}.py").write_text("")
    (tmp_path / "models" / "c.py").write_text("import os\n")
    graph = import_graph(tmp_path)
    assert graph["bot.pkg.a"] == {"bot.pkg.b", "bot.pkg.d", "models.c"}


def test_no_module_imports_itself_round_a_circle() -> None:
    assert circles(import_graph()) == []


def test_a_use_case_imports_no_channel_job_cli_or_composition_root() -> None:
    graph = import_graph()
    wrong = sorted(f"{module} imports {target}" for module, targets in graph.items()
                   if _under(module, USE_CASES) for target in targets
                   if any(_under(target, banned) for banned in NOT_FOR_USE_CASES))
    assert wrong == []


def test_no_channel_imports_another_channel() -> None:
    graph = import_graph()
    wrong = sorted(f"{module} imports {target}" for module, targets in graph.items()
                   for target in targets
                   if _channel(module) and _channel(target)
                   and _channel(module) != _channel(target))
    assert wrong == []


def test_a_circle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == ["a -> b -> c -> a (in the circle: a, b, c)"]
