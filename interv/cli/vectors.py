"""``interv vectors list|show|export|import|control``: the shipped vector library, other formats,
and random controls."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import SteeringError
from .common import add_overwrite

HELP = "the steering vector library; GGUF / EasyEdit2 conversion"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("vectors", help=HELP)
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", help="shipped vectors with their layers and recommended scale"
    )
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="a vector's metadata (library name or path)")
    show.add_argument("name")
    show.set_defaults(run=_show)
    export = actions.add_parser(
        "export", help="write a vector as a llama.cpp / repeng GGUF control vector"
    )
    export.add_argument("name", help="library name or path of a vector")
    export.add_argument("--gguf", type=Path, required=True, help="output .gguf file")
    export.add_argument(
        "--scale", type=float, default=None, help="baked-in scale (default: recommended)"
    )
    add_overwrite(export, "--gguf file")
    export.set_defaults(run=_export)
    convert = actions.add_parser(
        "import", help="read an EasyEdit2 folder, .pt file or GGUF into an interv vector"
    )
    convert.add_argument("source")
    convert.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    add_overwrite(convert, "--out file")
    convert.set_defaults(run=_import)
    control = actions.add_parser("control", help="a random vector of the same norms and layers")
    control.add_argument("name", help="library name or path of a vector")
    control.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    control.add_argument("--seed", type=int, default=0)
    control.add_argument(
        "--any-angle",
        action="store_true",
        help="do not make the random directions orthogonal to the vector's",
    )
    add_overwrite(control, "--out file")
    control.set_defaults(run=_control)


def _list(args: argparse.Namespace) -> int:
    from ..steer.library import entries

    rows = entries()
    if not rows:
        print("The library is empty.")
        return 0
    print("name\tmodel\tmethod\tlayers\trecommended_scale\tdataset\trecipe")
    for e in rows:
        meta = e.meta
        print(
            f"{e.name}\t{e.model}\t{e.method}\t{meta['layers']}\t{meta['recommended_scale']:g}\t"
            f"{meta['dataset']}\t{meta.get('meta', {}).get('config', '')}"
        )
    return 0


def _vector(name: str):
    from ..steer.library import load
    from ..steer.vector import SteeringVector

    artefact = load(name)
    if not isinstance(artefact, SteeringVector):
        raise SteeringError(f"{name} is a {type(artefact).__name__}, not a steering vector.")
    return artefact


def _show(args: argparse.Namespace) -> int:
    from ..steer.library import artefact_file, describe, find, load
    from ..steer.vector import SteeringVector

    artefact = load(args.name)
    if isinstance(artefact, SteeringVector):
        meta = artefact.metadata()
        meta["norms"] = {h: round(n, 4) for h, n in artefact.norms().items()}
    else:  # a graph or prompt, from the library (by name) or a path
        path = Path(args.name)
        meta = describe(artefact_file(path) if path.exists() else find(args.name).path)
    print(json.dumps(meta, indent=2, default=str))
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..steer.interop import export_gguf

    _check_out(args.gguf, args.overwrite)
    print(export_gguf(_vector(args.name), args.gguf, args.scale))
    return 0


def _import(args: argparse.Namespace) -> int:
    _check_out(args.out, args.overwrite)
    print(_vector(args.source).save(args.out))
    return 0


def _control(args: argparse.Namespace) -> int:
    _check_out(args.out, args.overwrite)
    print(_vector(args.name).control(args.seed, orthogonal=not args.any_angle).save(args.out))
    return 0


def _check_out(path: Path, overwrite: bool) -> None:
    """An output file: not inside the shipped library, and new unless ``--overwrite``."""
    from ..files import check_output_file
    from ..steer.library import check_not_shipped

    check_not_shipped(path, overwrite)
    check_output_file(path, overwrite)
