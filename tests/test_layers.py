"""The layers point one way: the import graph between the top-level packages, computed from the
sources (imports inside functions included), has no cycle, follows the layer order, and no private
name (``_x``) is imported from another package."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: bottom to top; a package may import only from its own layer or below, and never sideways
LAYERS = [("common",), ("datasets", "search"), ("deep",), ("methods",), ("protocols",)]
PACKAGES = [name for layer in LAYERS for name in layer]


def imports(path: Path):
    """``(module imported, names imported, line)`` for every import in a source file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(ROOT).parts[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: inside the same package
                module = package + ("." + module if module else "")
            yield module, [alias.name for alias in node.names], node.lineno


def package_graph():
    edges, private = {}, []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module, names, line in imports(path):
                top = module.split(".")[0]
                if top not in PACKAGES or top == package:
                    continue
                edges.setdefault(package, set()).add(top)
                where = f"{path.relative_to(ROOT)}:{line}"
                private += [f"{where} imports {module}.{n}" for n in names if n.startswith("_")]
                private += [f"{where} imports {module}" for part in module.split(".")[1:] if part.startswith("_")]
    return edges, private


def find_cycle(edges):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(package):
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_no_cycle_between_packages():
    edges, _ = package_graph()
    assert find_cycle(edges) is None, f"import cycle: {' -> '.join(find_cycle(edges))}"


def test_imports_point_down_the_layers():
    edges, _ = package_graph()
    upward = [f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer_of(b) >= layer_of(a)]
    assert not upward, f"imports sideways or up the layers {LAYERS}: {upward}"


def test_no_private_name_crosses_a_package():
    _, private = package_graph()
    assert not private, private


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def module_graph():
    """Module -> modules of the project it imports; a package's ``__init__`` loading its own plugin
    modules (the registries of datasets, search and methods) is left out, as it is meant to be."""
    def module_name(path):
        parts = path.relative_to(ROOT).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        for module, names, _ in imports(path):
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            for target in targets:
                if target not in modules or target == name:
                    continue
                if path.name == "__init__.py" and target.startswith(name + "."):
                    continue
                edges.setdefault(name, set()).add(target)
    return edges


def test_no_cycle_between_modules():
    cycle = find_cycle(module_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"
