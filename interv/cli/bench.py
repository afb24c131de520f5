"""``interv bench NAME --json FILE``: run a benchmark and write its JSON report."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from ..bench import benchmarks
from .common import add_model_args, add_overwrite, index_int, positive_int

HELP = "speed and quality benchmarks (JSON reports)"
# integer options of a benchmark that are not counts (every other one must be positive)
NOT_COUNTS = {"seed": None, "layer": index_int}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help=HELP)
    names = parser.add_subparsers(dest="benchmark", required=True)
    for name in benchmarks():
        module = importlib.import_module(f"interv.bench.{name}")
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        add_model_args(sub, backend=False)
        sub.add_argument("--json", type=Path, required=True, help="where to write the report")
        add_overwrite(sub, "--json report")
        module.add_arguments(sub)
        _counts_positive(sub)
        sub.set_defaults(run=_runner(module))


def _counts_positive(parser: argparse.ArgumentParser) -> None:
    """Give every integer count option of a benchmark the CLI's one count type, so that
    ``--n -5`` is refused as everywhere else (the benchmarks declare plain ``int``)."""
    for action in parser._actions:
        if action.type is int:
            action.type = NOT_COUNTS.get(action.dest, positive_int) or int


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        from ..files import check_output_file, write_json

        check_output_file(args.json, args.overwrite)  # before the benchmark runs
        report = module.run(args)
        write_json(args.json, report)
        print(json.dumps(report, indent=2))
        return 0 if report.get("ok", True) else 1  # a benchmark whose checks failed

    return run
