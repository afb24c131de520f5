"""``interv bench NAME --json FILE``: run a benchmark and write its JSON report."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from ..bench import benchmarks
from .common import add_model_args

HELP = "speed and quality benchmarks (JSON reports)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help=HELP)
    names = parser.add_subparsers(dest="benchmark", required=True)
    for name in benchmarks():
        module = importlib.import_module(f"interv.bench.{name}")
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        add_model_args(sub, backend=False)
        sub.add_argument("--json", type=Path, required=True, help="where to write the report")
        module.add_arguments(sub)
        sub.set_defaults(run=_runner(module))


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        report = module.run(args)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2))
        return 0 if report.get("ok", True) else 1  # a benchmark whose checks failed

    return run
