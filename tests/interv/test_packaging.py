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


def test_shipped_files_are_package_data():
    """Every file of a shipped SAE, recipe or vector matches a package-data pattern."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config["package-data"]
    for folder, package, suffixes in (("sae/pretrained", "interv.sae", (".json", ".safetensors")),
                                      ("recipes", "interv.recipes", (".yaml",))):
        root = ROOT / folder.split("/")[0]
        files = [f for f in (ROOT / folder).rglob("*") if f.is_file() and f.suffix in suffixes]
        assert files, f"nothing shipped under {folder}"
        for file in files:
            relative = file.relative_to(root)
            assert any(relative.match(p) or (p.startswith("**/") and relative.match(p[3:]))
                       for p in data[package]), f"{relative} is not package data of {package}"
