"""The import floors, as a rule on the source: an AST scan of every import in interv.

* Packages import downward only: every module belongs to one unit of ``FLOORS`` and imports
  modules of its own unit or of a lower floor, never of a unit beside or above it.
* No cycle between modules, counting function-level imports too (a function-level import that
  dodges a cycle is a type on the wrong floor).
* A private module (``_name.py``) is imported only from inside its own package.
* Function-level imports of interv modules are only the command line's (so that ``interv
  --help`` imports nothing heavy); everywhere else imports sit at the top of the module.

docs/design.md draws the same floors.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "interv": "interv",
    "adapters": "interv.adapters",
    "sae": "interv.sae",
    "recipes": "interv.recipes",
    "vectors": "interv.vectors",
}

# bottom to top; a unit is a package or a module, named by its dotted path
FLOORS: list[list[str]] = [
    ["interv.errors", "interv._version"],
    ["interv.adapters"],
    ["interv.floor"],  # the shared types and file formats: FLOOR_MODULES
    ["interv.data", "interv.patch", "interv.adaptor", "interv.provision"],
    ["interv.loading", "interv.stats", "interv.eval", "interv.sae", "interv.analysis"],
    ["interv.graph"],
    ["interv.edit", "interv.steer"],
    ["interv.steer.workflow", "interv.easyedit"],
    ["interv.bench"],
    ["interv.cli"],
    ["interv"],  # the package itself: its lazy top-level names
]
FLOOR_MODULES = [
    "interv.files",
    "interv.record",
    "interv.requests",
    "interv.contrast",
    "interv.tokens",
    "interv.prompts",
    "interv.hparams",
    "interv.registry",
    "interv.paths",
    "interv.devices",
    "interv.linalg",
    "interv.recipes",
    "interv.vectors",
]


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    line: int
    nested: bool  # inside a function


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if folder == "interv" and parts[0] in FOLDERS:
                continue
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(known: dict[str, Path]) -> list[Import]:
    found = []
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        nested = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
                ]
            else:
                continue
            for target in targets:
                resolved = _resolve(target, known) if target.startswith("interv") else None
                if resolved and resolved != module:
                    found.append(Import(module, resolved, node.lineno, id(node) in nested))
    return found


def unit_of(module: str) -> str:
    if any(module == m or module.startswith(m + ".") for m in FLOOR_MODULES):
        return "interv.floor"
    units = [u for floor in FLOORS for u in floor]
    return max((u for u in units if module == u or module.startswith(u + ".")), key=len)


def floor_of(unit: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if unit in floor)


def upward(found: list[Import]) -> list[str]:
    """The imports that go to a unit beside or above their own."""
    wrong = []
    for imp in found:
        source, target = unit_of(imp.source), unit_of(imp.target)
        if source != target and floor_of(target) >= floor_of(source):
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} ({source} -> {target})")
    return wrong


def cycles(known: dict[str, Path], found: list[Import]) -> list[set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in found:
        if not imp.source.startswith(imp.target + "."):  # a module importing its own package
            graph[imp.source].add(imp.target)
    return [c for c in _strongly_connected(graph) if len(c) > 1]


def private_crossings(found: list[Import]) -> list[str]:
    wrong = []
    for imp in found:
        package, _, leaf = imp.target.rpartition(".")
        inside = imp.source == package or imp.source.startswith(package + ".")
        if leaf.startswith("_") and not inside:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target}")
    return wrong


KNOWN = modules()
IMPORTS = imports(KNOWN)


def test_the_scan_sees_the_code():
    assert len(KNOWN) > 120 and len(IMPORTS) > 500
    pairs = {(i.source, i.target) for i in IMPORTS}
    assert ("interv.edit.rome", "interv.linalg") in pairs  # from ..linalg import ...
    assert ("interv.graph", "interv.graph.positions") in pairs  # from . import positions
    assert any(i.nested for i in IMPORTS)  # the command line imports inside its functions


def test_packages_import_downward_only():
    wrong = upward(IMPORTS)
    assert not wrong, "\n".join(wrong)


def test_no_cycle_between_modules():
    found = cycles(KNOWN, IMPORTS)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_private_modules_stay_in_their_package():
    wrong = private_crossings(IMPORTS)
    assert not wrong, "\n".join(wrong)


def test_function_level_imports_only_in_the_command_line():
    lazy = {"interv.cli", "interv"}
    wrong = [
        f"{i.source}:{i.line} imports {i.target} inside a function"
        for i in IMPORTS
        if i.nested and unit_of(i.source) not in lazy
    ]
    assert not wrong, "\n".join(wrong)


def test_the_rules_catch_wrong_imports(tmp_path):
    """An upward import, a cycle through a function-level import and a private module used by
    another package, in a small tree, are each reported."""
    files = {
        "interv.graph.low": "def f():\n    from interv.edit import high\n",
        "interv.edit.high": "from interv.graph import low\nfrom interv.graph import _inner\n",
        "interv.graph._inner": "",
    }
    known = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        known[name] = path
    found = imports(known)
    assert upward(found) == [
        "interv.graph.low:2 imports interv.edit.high (interv.graph -> interv.edit)"
    ]
    assert cycles(known, found) == [{"interv.graph.low", "interv.edit.high"}]
    assert private_crossings(found) == ["interv.edit.high:2 imports interv.graph._inner"]


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found
