"""Entry point of the ``interv`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from .. import cli


def commands() -> list[str]:
    """Command modules of interv.cli: each defines register(subparsers) and sets `run` defaults."""
    names = [m.name for m in pkgutil.iter_modules(cli.__path__) if not m.name.startswith("_")]
    return [n for n in names if hasattr(importlib.import_module(f"interv.cli.{n}"), "register")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interv", description="Edit and steer language models with canonical hook names."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in commands():
        importlib.import_module(f"interv.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        return int(args.run(args) or 0)
    except (ValueError, KeyError, OSError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"interv: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
