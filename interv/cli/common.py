"""Arguments several commands share."""

from __future__ import annotations

import argparse

# interv.adapters.BACKENDS; spelled out so that building the parser imports no torch (the
# backend is checked, with these names, when the model loads)
BACKEND_HELP = "hooking backend: hf (default), transformer_lens or nnsight"


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
