"""The shape of the code: no import circle among the project's modules, none over 400 lines,
and the layers point one way (`signaling` <- `server`, `recorder` on its own).

Every import counts, also those inside functions and under `TYPE_CHECKING`: a circle
hidden in a function is still a circle a reader has to untangle. The graph is read with
`ast` from the source, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("signaling", "server", "recorder")
MAX_LINES = 400

PENDING: dict[str, str] = {}
"""Known offenders, module -> what is wrong. It may only shrink: a module listed here that
is now fine fails the test too, so the list stays honest until it is empty."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


def _imported(name: str, tree: ast.Module, is_package: bool,
              modules: dict[str, Path]) -> set[str]:
    """The project modules one module imports (the most specific module each names)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t for t in submodules if t in modules]
            if len(targets) < len(submodules):  # some names are attributes of `base`
                targets.append(base)
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: _imported(name, ast.parse(path.read_text(), str(path)),
                            path.name == "__init__.py", modules)
            for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def _problems() -> dict[str, set[str]]:
    problems: dict[str, set[str]] = {}
    for cycle in import_cycles(import_graph()):
        for name in cycle:
            problems.setdefault(name, set()).add("cycle")
    for name, path in project_modules().items():
        if len(path.read_text().splitlines()) > MAX_LINES:
            problems.setdefault(name, set()).add("size")
    return problems


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_lazy_relative_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "server.recording.embedded" in graph["server.http.recordings"]
    assert "server.keys" in graph["server.recording.embedded"]
    assert "recorder.participant" in graph["recorder.stdio"]  # `from .participant import`
    assert "recorder.service" in graph["server.recording.commands"]  # inside a function


def test_no_import_cycle_and_no_module_over_400_lines() -> None:
    problems = _problems()
    new = {name: sorted(kinds) for name, kinds in problems.items()
           if not kinds <= set(PENDING.get(name, "").replace(" ", "").split(","))}
    assert not new, f"import cycles or modules over {MAX_LINES} lines: {new}"
    fixed = {name: kinds for name, kinds in PENDING.items()
             if set(kinds.replace(" ", "").split(",")) - problems.get(name, set())}
    assert not fixed, f"fixed: take them out of PENDING (or narrow what is listed): {fixed}"


def test_layers_point_one_way() -> None:
    """`signaling` is the core (no web, no files); the recorder process is a client of it
    over the protocol and shares no code with the server."""
    graph = import_graph()
    wrong = sorted((name, dep) for name, deps in graph.items() for dep in deps
                   if (name.startswith("signaling") and not dep.startswith("signaling"))
                   or (name.startswith("recorder") and dep.startswith("server")))
    assert not wrong, wrong
