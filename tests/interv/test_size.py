"""The size budget of the style guide: library files of at most 400 lines, functions of at most
60. Over budget means split (a file per topic, a helper per step)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE, MAX_FUNCTION = 400, 60


def _files() -> list[Path]:
    folders = ("interv", "adapters", "sae")
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_files_stay_within_400_lines():
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in _files()
        if (n := len(p.read_text().splitlines())) > MAX_FILE
    ]
    assert not long, "\n".join(long)


def test_functions_stay_within_60_lines():
    long = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert not long, "\n".join(long)
