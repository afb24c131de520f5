"""Recipes resolve by path or by shipped name, one way for every CLI."""

from __future__ import annotations

import pytest

from interv.recipes import recipe_path


def test_shipped_names_and_paths_resolve_to_the_same_file(tmp_path):
    found = recipe_path("edit/alphaedit-sequential-smollm2")
    assert found.is_file() and found.name == "alphaedit-sequential-smollm2.yaml"
    prefixed = recipe_path("recipes/edit/alphaedit-sequential-smollm2.yaml")
    assert prefixed.read_text() == found.read_text()
    own = tmp_path / "mine.yaml"
    own.write_text("method: rome\n")
    assert recipe_path(str(own)) == own


def test_an_unknown_recipe_names_itself():
    with pytest.raises(FileNotFoundError, match="'edit/nope'.*neither a file nor a recipe"):
        recipe_path("edit/nope")
