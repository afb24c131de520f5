"""The README's Python example runs as written against the default model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_examples_run(real_model_dir, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert "30 576" in capsys.readouterr().out
