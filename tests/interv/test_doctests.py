"""The ``>>>`` examples in interv's docstrings run as written. Examples that need the default
model are plain ``::`` code blocks, not run here; docs/ holds runnable versions of each
workflow (tests/real/test_docs.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.interv.test_imports import KNOWN

MODULES = sorted(name for name in KNOWN if not name.startswith(("interv.cli", "interv.bench")))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} fail"


def test_there_are_examples_to_run():
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name))
    )
    assert examples > 60
