"""Recipes resolve by path or by shipped name, one way for every CLI."""

from __future__ import annotations

import pytest

from interv.recipes import recipe_name, recipe_path


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


def test_recipe_name_is_the_inverse_for_shipped_recipes(tmp_path):
    shipped = recipe_path("edit/alphaedit-sequential-smollm2")
    assert recipe_name(str(shipped)) == "recipes/edit/alphaedit-sequential-smollm2.yaml"
    assert recipe_path(recipe_name(str(shipped))).resolve() == shipped.resolve()
    own = str(tmp_path / "mine.yaml")
    assert recipe_name(own) == own  # a user's file keeps its own path
