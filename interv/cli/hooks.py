"""``interv hooks``: the canonical hook (or weight) names of a model, one per line."""

from __future__ import annotations

import argparse

from .common import add_model_args

HELP = "list canonical hook names"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hooks", help=HELP)
    add_model_args(parser)
    parser.add_argument("--weights", action="store_true", help="list weight names instead")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..loading import load

    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    names = model.weight_names() if args.weights else model.hook_names()
    print("\n".join(names))
    return 0
