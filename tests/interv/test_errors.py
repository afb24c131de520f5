"""One error base: every exception interv raises is an ``interv.errors.IntervError``.

An AST scan of every ``raise SomeError(...)`` in interv's source resolves the class in its
module and checks that it derives from ``IntervError`` (re-raising a caught exception, bare
``raise``, is fine). The subclasses also derive from the built-in their callers expect.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from interv import errors
from interv.errors import IntervError, UnknownKeyError, UnknownNameError

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "interv": "interv",
    "adapters": "interv.adapters",
    "sae": "interv.sae",
    "recipes": "interv.recipes",
}


def _module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    parts = path.relative_to(ROOT / folder).with_suffix("").parts
    return ".".join((FOLDERS[folder], *parts)).removesuffix(".__init__")


def raised_names(path: Path) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every class raised by name in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(target, ast.Name | ast.Attribute):
            found.append((node.lineno, ast.unparse(target)))
    return found


def _sources() -> list[Path]:
    return [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]


def test_every_raise_uses_the_error_base():
    wrong, checked = [], 0
    for path in sorted(_sources()):
        module = importlib.import_module(_module_name(path))
        for line, name in raised_names(path):
            head, *rest = name.split(".")
            value = getattr(module, head, None)
            for part in rest:
                value = getattr(value, part, None)
            if not isinstance(value, type):
                continue  # a variable holding a caught exception or an error class parameter
            checked += 1
            if not issubclass(value, IntervError):
                wrong.append(f"{path.relative_to(ROOT)}:{line} raises {name}")
    assert checked > 300, "the scan resolved too few raises to mean anything"
    assert not wrong, "raises outside the error base:\n" + "\n".join(wrong)


def test_the_scan_sees_a_foreign_error(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    raise ValueError('x')\n\ndef g(err):\n    raise err\n")
    assert raised_names(source) == [(2, "ValueError"), (5, "err")]


def test_every_error_class_is_an_intervention_error_and_its_builtin():
    classes = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(cls, IntervError) for cls in classes)
    assert issubclass(errors.ConfigError, ValueError) and issubclass(UnknownNameError, KeyError)
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    assert issubclass(errors.UnsupportedError, NotImplementedError)


def test_unknown_names_and_keys_name_the_closest_ones():
    err = UnknownNameError(
        "hook", "blocks.0.hook_resid_psot", ["blocks.0.hook_resid_post", "blocks.0.hook_mlp_out"]
    )
    assert "Closest valid names: blocks.0.hook_resid_post" in str(err)
    assert err.suggestions[0] == "blocks.0.hook_resid_post"
    key = UnknownKeyError("recipe.yaml", "layerz", ["layers", "lr"])
    assert str(key).startswith("recipe.yaml: unknown key 'layerz'. Did you mean 'layers'?")
    with pytest.raises(KeyError):
        raise err
