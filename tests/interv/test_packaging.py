"""Packaging: every package folder is listed for setuptools, so a wheel install is complete."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {
    "interv": "interv",
    "adapters": "interv.adapters",
    "sae": "interv.sae",
    "recipes": "interv.recipes",
    "vectors": "interv.vectors",
}


def _data_packages(config: dict) -> set[str]:
    """Folders of package data whose names are identifiers: setuptools takes them for packages
    and warns ("Package would be ignored") about each one not listed in ``packages``."""
    found = set()
    for package, patterns in config["package-data"].items():
        root = ROOT / config["package-dir"].get(package, package.replace(".", "/"))
        for pattern in patterns:
            for path in root.glob(pattern):
                parts = list(
                    itertools.takewhile(str.isidentifier, path.relative_to(root).parent.parts)
                )
                found |= {".".join((package, *parts[:k])) for k in range(1, len(parts) + 1)}
    return found


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = _data_packages(config)
    for folder, package in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found == listed, f"missing: {sorted(found - listed)}, stale: {sorted(listed - found)}"
    assert config["package-dir"]["interv.adapters"] == "adapters"
    assert config["package-dir"]["interv.sae"] == "sae"


def test_shipped_files_are_package_data():
    """Every file of a shipped SAE, recipe, vector or data subset matches a package-data pattern."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config["package-data"]
    shipped = (
        ("sae", "pretrained", "interv.sae", (".json", ".safetensors")),
        ("recipes", "", "interv.recipes", (".yaml",)),
        ("vectors", "", "interv.vectors", (".safetensors", ".yaml", ".json")),
        ("interv/data", "bundled", "interv.data", (".json", ".jsonl", ".txt")),
    )
    for package_dir, folder, package, suffixes in shipped:
        root = ROOT / package_dir
        files = [f for f in (root / folder).rglob("*") if f.is_file() and f.suffix in suffixes]
        assert files, f"nothing shipped under {package_dir}/{folder}"
        for file in files:
            relative = file.relative_to(root)
            assert any(_glob_match(str(relative), p) for p in data[package]), (
                f"{relative} is not package data of {package}"
            )


def _glob_match(path: str, pattern: str) -> bool:
    """setuptools' package-data globbing: ``*`` within a folder, ``**/`` across folders."""
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None
