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


# -- the report side's rules (issue 31) ---------------------------------------------------------------
def _sources():
    """``{module name: path}`` of every module of the project's packages."""
    def module_name(path):
        parts = path.relative_to(ROOT).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def commands():
    """The commands: modules of ``protocols`` run as ``python -m protocols.X`` (a top-level ``main``
    and the ``__main__`` guard)."""
    found = set()
    for name, path in _sources().items():
        tree = ast.parse(path.read_text())
        has_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
        guarded = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        if name.startswith("protocols.") and has_main and guarded:
            found.add(name)
    return found


#: the modules that render (Markdown, HTML, plots) and so write what readers see
RENDERING = ("matplotlib", "jinja2", "plotly", "protocols.markdown", "protocols.plots", "protocols.site_render")


def renderers():
    """Modules that render: they import matplotlib, Jinja2 or plotly, or one of the rendering modules."""
    found = set()
    for name, path in _sources().items():
        for module, names, _ in imports(path):
            targets = [module] + [f"{module}.{n}" for n in names]
            if any(t == r or t.startswith(r + ".") for t in targets for r in RENDERING):
                found.add(name)
    return found | {r for r in RENDERING if r.startswith("protocols.")}


#: (importer, command) edges not untangled yet, each with why: none since issue 31 moved the libraries out
#: of the commands (Table II's into protocols.efficiency_*)
ALLOWED_COMMAND_IMPORTS = {
}


def _imports_of_commands(importers):
    found = set()
    for name, targets in module_graph().items():
        if name in importers:
            found |= {(name, t) for t in targets if t in commands() and t != name}
    return found


def test_the_command_rules_see_the_commands():
    assert {"protocols.map", "protocols.paper", "protocols.report", "protocols.site"} <= commands()
    assert "protocols.tables" not in commands() and "protocols.runner" not in commands()
    assert {"protocols.markdown", "protocols.plots", "protocols.site_map", "protocols.tables"} <= renderers()


def test_commands_do_not_import_commands():
    found = _imports_of_commands(commands())
    assert not found - set(ALLOWED_COMMAND_IMPORTS), sorted(found - set(ALLOWED_COMMAND_IMPORTS))


def test_renderers_do_not_import_commands():
    found = _imports_of_commands(renderers())
    assert not found - set(ALLOWED_COMMAND_IMPORTS), sorted(found - set(ALLOWED_COMMAND_IMPORTS))


def test_matplotlib_is_drawn_in_one_module():
    """Every matplotlib figure comes from protocols.plots, in one style (issue 31): a view that wants a
    figure calls it, so no second plotting style grows elsewhere."""
    found = {name for name, path in _sources().items()
             for module, _, _ in imports(path) if module == "matplotlib" or module.startswith("matplotlib.")}
    assert found == {"protocols.plots"}, sorted(found)


def test_the_allowed_command_imports_are_all_still_needed():
    found = _imports_of_commands(commands() | renderers())
    assert not set(ALLOWED_COMMAND_IMPORTS) - found, f"untangled, remove: {set(ALLOWED_COMMAND_IMPORTS) - found}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_private_names(tree) -> set[str]:
    """The private names a module defines: functions, classes, assignments, attributes it sets, arguments."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


class _PrivateAccess(ast.NodeVisitor):
    """``x._name`` where ``_name`` is another module's private name: not on ``self``/``cls`` (a
    method's first argument: a subclass using its base's protected members) nor on ``super()``."""

    def __init__(self, foreign: set[str]):
        self.foreign, self.first_args, self.found = foreign, [], []

    def visit_FunctionDef(self, node):
        args = node.args.posonlyargs + node.args.args
        self.first_args.append(args[0].arg if args else None)
        self.generic_visit(node)
        self.first_args.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node):
        base = node.value
        own = isinstance(base, ast.Name) and self.first_args and base.id == self.first_args[-1] \
            and base.id in ("self", "cls")
        own = own or (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super")
        if node.attr in self.foreign and not own:
            self.found.append((node.lineno, ast.unparse(node)))
        self.generic_visit(node)


def private_crossings() -> list[str]:
    """Every private name used across modules: imported (``from m import _x``, ``import m._x``) or read
    as an attribute (``module._x``, ``cls._x``) where ``_x`` is defined by another module only."""
    sources = _sources()
    trees = {name: ast.parse(path.read_text()) for name, path in sources.items()}
    defined = {name: _defined_private_names(tree) for name, tree in trees.items()}
    everywhere = set().union(*defined.values())
    found = []
    for name, path in sources.items():
        where = path.relative_to(ROOT)
        for module, names, line in imports(path):
            if module.split(".")[0] in PACKAGES and module != name:
                found += [f"{where}:{line} imports {module}.{n}" for n in names if _private(n)]
                found += [f"{where}:{line} imports {module}" for part in module.split(".")[1:] if _private(part)]
        visitor = _PrivateAccess(everywhere - defined[name])
        visitor.visit(trees[name])
        found += [f"{where}:{line} reads {text}" for line, text in visitor.found]
    return found


def test_no_private_name_crosses_a_module():
    assert not private_crossings(), private_crossings()


def test_the_private_name_rule_finds_a_crossing(tmp_path):
    tree = ast.parse("def f(cls):\n    return cls._param_names()\n\n\ndef g(methods):\n"
                     "    return [m._param_names() for m in methods]\n")
    visitor = _PrivateAccess({"_param_names"})
    visitor.visit(tree)
    assert [line for line, _ in visitor.found] == [6]  # a method's own cls is its class; a loop variable is not


#: the size rule's limits (faiss's and ann-benchmarks' modules read in one sitting)
MODULE_LINES, FUNCTION_LINES = 400, 60
#: what is over them, each with why (what the module is, and what would come apart next); a compiled
#: kernel (numba) is exempt
OVERSIZE = {
    "search/kernels.py": "the compiled (numba) search loops: the tree's best-first search (scan, selection, tie "
                         "merge) and the exhaustive top-k share inlined helpers (popcount, distance, radix pass) "
                         "that one file keeps fused; the kernels' own lines are most of it",
    "search/tree.py": "HDHash's tree index, one class: the layout (runs of equal codes, per-level nodes and "
                      "offsets), the keep rule in numpy (rank, and the reference of the compiled search) and the "
                      "calls into search.kernels; the numpy keep rule walks the layout's arrays directly",
    "protocols/runner.py": "the library under the commands: flag parsing and checks, parameters and the training "
                           "budget, running (load, fit, run) and storing (record paths, store, keep_superseded, "
                           "stored_run); parsing and storing are what come apart next (issue 31)",
    "protocols/grid.py": "a grid run in process or on Dask: the jobs, the Dask client, and the checks that refuse "
                         "a worker or its records (worker_state, _WorkerCheck, _collect); those checks, about 150 "
                         "lines, are what would come apart next",
    "deep/trainer.py": "the one trainer: batches and augmentation, the epoch, validation and early stopping, "
                       "resume and the optimiser's schedule, train being their sequence; resume (Checkpoint, its "
                       "save and restore, about 85 lines) is what would come apart next",
}


def oversize() -> set[str]:
    found = set()
    for path in _sources().values():
        where = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            found.add(where)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                compiled = any("njit" in ast.unparse(d) or "jit(" in ast.unparse(d) for d in node.decorator_list)
                if not compiled and node.end_lineno - node.lineno + 1 > FUNCTION_LINES:
                    found.add(f"{where}::{node.name}")
    return found


def test_modules_and_functions_are_small():
    found = oversize()
    assert not found - set(OVERSIZE), f"over {MODULE_LINES} lines a module or {FUNCTION_LINES} a function: " \
                                      f"{sorted(found - set(OVERSIZE))}"
    assert not set(OVERSIZE) - found, f"no longer over the limits, remove from OVERSIZE: {set(OVERSIZE) - found}"
