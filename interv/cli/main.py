"""Entry point of the ``interv`` command.

Every module of ``interv.cli`` with ``HELP`` and ``register(subparsers)`` is a command named
after the module. Only the command being run registers its arguments (and imports what they
need); ``interv --help`` lists every command from its ``HELP`` alone, and command modules import
nothing heavy at import time, so the listing is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from .. import cli
from .._version import version
from ..errors import ConfigError, IntervError


def commands() -> dict[str, ModuleType]:
    """The command modules of interv.cli, by command name."""
    found = {}
    for info in pkgutil.iter_modules(cli.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"interv.cli.{info.name}")
        if hasattr(module, "register"):
            found[info.name] = module
    return found


class _Parser(argparse.ArgumentParser):
    """Bad arguments raise ``ConfigError`` (one ``interv: error:`` line, exit 2, as every
    refusal) instead of argparse's exit; subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command`` registers its arguments (none does when None)."""
    parser = _Parser(
        prog="interv", description="Edit and steer language models with canonical hook names."
    )
    parser.add_argument("--version", action="version", version=f"interv {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in commands().items():
        if name == command:
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=module.HELP)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first argument that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command(argv)
    try:
        args = build_parser(command).parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(message)s",
        )
        return int(args.run(args) or 0)
    except (IntervError, OSError) as err:  # what interv refuses, and files it cannot use
        print(f"interv: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
