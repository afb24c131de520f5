"""Every public function that takes or returns a tensor says its shape (jaxtyping).

An AST scan of interv's source: in every ``def`` whose name does not start with ``_``, an
annotation that mentions ``Tensor`` must hold it inside a jaxtyping dtype (``Float[Tensor,
"batch pos d_model"]``, ``Int[...]``, ``Bool[...]``, ``Shaped[...]``...), also inside
containers (``dict[str, Float[Tensor, "n d"]]``). The shapes are checked at test time by the
jaxtyping pytest hook with beartype (pyproject's addopts).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JAXTYPING = {
    "Float",
    "Int",
    "Bool",
    "Shaped",
    "Num",
    "Integer",
    "Real",
    "Inexact",
    "Complex",
    "UInt",
    "Float16",
    "Float32",
    "Float64",
    "BFloat16",
    "Key",
}


def _bare_tensors(annotation: ast.expr | None) -> list[str]:
    """``Tensor`` names in an annotation that are not inside a jaxtyping subscript."""
    if annotation is None:
        return []
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:  # a quoted annotation
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return []
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Subscript):
            head = node.value
            name = head.attr if isinstance(head, ast.Attribute) else getattr(head, "id", "")
            if name in JAXTYPING:
                return  # Float[Tensor, "..."]: shaped
        if isinstance(node, ast.Name) and node.id == "Tensor":
            found.append("Tensor")
        if isinstance(node, ast.Attribute) and node.attr == "Tensor":
            found.append(ast.unparse(node))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(annotation)
    return found


def unshaped(path: Path) -> list[str]:
    """``file:line function(argument)`` for each public signature with a bare tensor."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name.startswith(
            "_"
        ):
            continue
        args = node.args
        params = [
            *args.posonlyargs,
            *args.args,
            *args.kwonlyargs,
            *([args.vararg] if args.vararg else []),
            *([args.kwarg] if args.kwarg else []),
        ]
        where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
        found += [f"{where}({p.arg})" for p in params if _bare_tensors(p.annotation)]
        if _bare_tensors(node.returns):
            found.append(f"{where} -> return")
    return found


def test_public_tensor_signatures_have_shapes():
    files = [p for folder in ("interv", "adapters", "sae") for p in (ROOT / folder).rglob("*.py")]
    found = [line for path in sorted(files) for line in unshaped(path)]
    assert not found, f"{len(found)} public signatures without shapes:\n" + "\n".join(found)


def test_the_scan_tells_shaped_from_bare(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "def ok(x: Float[Tensor, 'n d']) -> dict[str, Float[Tensor, ' d']]: ...\n"
        "def bare(x: Tensor, y: torch.Tensor | None = None) -> list[Tensor]: ...\n"
        "def _private(x: Tensor) -> Tensor: ...\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert unshaped(source) == ["m.py:2 bare(x)", "m.py:2 bare(y)", "m.py:2 bare -> return"]
    finally:
        ROOT = saved
