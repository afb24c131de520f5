"""Packaging: every package folder is listed for setuptools, so a wheel install is complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {"interv": "interv", "adapters": "interv.adapters", "sae": "interv.sae",
          "recipes": "interv.recipes", "vectors": "interv.vectors"}


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for folder, package in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"
    assert config["package-dir"]["interv.adapters"] == "adapters"
    assert config["package-dir"]["interv.sae"] == "sae"
