"""Benchmarks behind ``interv bench NAME --json FILE``: speed and quality measured as ratios
within one run. Each module defines ``add_arguments(parser)`` and ``run(args) -> dict``."""

BENCHMARKS = ("forward",)
