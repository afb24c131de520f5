"""Arguments several commands share."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import ConfigError

# interv.adapters.BACKENDS; spelled out so that building the parser imports no torch (the
# backend is checked, with these names, when the model loads)
BACKEND_HELP = "hooking backend: hf (default), transformer_lens or nnsight"


def int_at_least(minimum: int) -> Callable[[str], int]:
    """The argparse ``type`` of a count-like option: an integer of at least ``minimum``
    (``--n -5`` or ``--n 0`` is refused instead of meaning "all" or "none"). argparse reports
    a refusal as ``argument --n: invalid positive integer value: '-5'``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ConfigError(f"{text!r} is below {minimum}")  # argparse words it, with __name__
        return value

    parse.__name__ = "positive integer" if minimum == 1 else f"integer (at least {minimum})"
    return parse


positive_int = int_at_least(1)  # counts: --n, --batch-size, --tokens...
index_int = int_at_least(0)  # offsets: --start, --held-out


def add_overwrite(parser: argparse.ArgumentParser, what: str = "output folder") -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing {what} (refused without it)",
    )


def add_model_args(parser: argparse.ArgumentParser, *, backend: bool = True) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="model name, local folder or hub id (default: the default model)",
    )
    if backend:
        parser.add_argument("--backend", default="hf", help=BACKEND_HELP)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--dtype", default=None, help="float32 (default), bfloat16 or float16")
