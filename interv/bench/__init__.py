"""Benchmarks behind ``interv bench NAME --json FILE``: speed and quality measured as ratios
within one run. Every module here that defines ``add_arguments(parser)`` and
``run(args) -> dict`` is a benchmark named after the module."""

from __future__ import annotations

import importlib
import pkgutil


def benchmarks() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    return [n for n in names if hasattr(importlib.import_module(f"{__name__}.{n}"), "run")]
