"""``interv patch inspect|apply|revert|merge``: weight patches on disk and in checkpoints.

    interv patch inspect runs/ftm/patch.safetensors
    interv patch apply runs/ftm/patch.safetensors --model SmolLM2-135M-Instruct --out edited/
    interv patch revert runs/ftm/patch.safetensors --model edited/ --out restored/
    interv patch merge a.safetensors b.safetensors --model base/ --out edited/

``apply``/``merge`` write the model with the patch(es) added as a normal ``transformers``
checkpoint folder (config, safetensors, tokenizer) plus ``interv-patches.json`` listing the
patches it carries and ``interv-originals-<sha256>.safetensors`` holding the values the weights
had before each of them; ``revert`` copies those values back, so the reverted checkpoint holds
the original bytes. ``revert`` is refused (``PatchError``, nothing written) when the checkpoint
does not carry the patch, when a patch applied after it is still there (revert the last one
first), or when the weights changed since. Every patch is checked against the model's
fingerprint before anything is written; ``--out`` must be a new folder (or ``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_model_args, add_overwrite

HELP = "inspect weight patches, apply them to checkpoints"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("patch", help=HELP)
    actions = parser.add_subparsers(dest="action", required=True)
    inspect = actions.add_parser("inspect", help="print a patch's weights and provenance")
    inspect.add_argument("patch", type=Path)
    inspect.set_defaults(run=_inspect)
    for name, text in (
        ("apply", "add a patch to a model, write the edited checkpoint"),
        ("revert", "subtract a patch a checkpoint carries, write the result"),
        ("merge", "add several patches in order, write the edited checkpoint"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("patch", type=Path, nargs="+" if name == "merge" else None)
        sub.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
        add_overwrite(sub)
        add_model_args(sub, backend=True)
        sub.set_defaults(run=_change, action=name)


def _inspect(args: argparse.Namespace) -> int:
    from ..edit.runner import load_edit
    from ..patch import PatchSet

    patch = load_edit(args.patch)
    if isinstance(patch, PatchSet):
        print(f"{args.patch}: {len(patch.patches)} patch(es), method {patch.method or '?'}")
        print(
            f"  model fingerprint {patch.fingerprint}, created {patch.created}, "
            f"interv {_meta(args.patch).get('interv_version', '?')}"
        )
        for row in patch.summary():
            print(
                f"  {row['weight']:<28} {row['kind']:<8} shape {row['shape']} "
                f"norm {row['norm']:.4g}"
            )
    else:
        print(f"{args.patch}: a {patch.kind} of {len(patch.summary())} edit(s), no weight change")
        print(f"  made for {patch.model.name if patch.model else '?'}, created {patch.created}")
        for row in patch.summary()[:10]:
            print(f"  {row['edit']}")
    print(f"  {len(patch.requests)} request(s):")
    for request in patch.requests[:10]:
        print(f"    {request.get('prompt')!r} -> {request.get('target_new')!r}")
    if len(patch.requests) > 10:
        print(f"    ... and {len(patch.requests) - 10} more")
    print("  hparams: " + json.dumps(patch.hparams, default=str))
    return 0


def _patch_sets(files: list[Path]) -> list[Any]:
    """The patch files as ``PatchSet``s; corrupt files fail before the model loads."""
    from ..edit.runner import load_edit
    from ..patch import PatchError, PatchSet

    edits = [load_edit(f) for f in files]
    for path, edit in zip(files, edits, strict=True):
        if not isinstance(edit, PatchSet):
            raise PatchError(
                f"{path} is a {edit.kind}: it changes no weight, so no checkpoint can carry "
                "it. Load it with its class (.load) and apply it to a loaded model."
            )
    return edits


def _check_out(args: argparse.Namespace) -> None:
    from ..errors import ConfigError
    from ..files import check_output_folder

    if args.model is not None and args.out.resolve() == Path(args.model).resolve():
        raise ConfigError(
            f"--out {args.out} is the --model folder; write the result to a new folder (the "
            "checkpoint read stays as it is until the new one is complete)."
        )
    check_output_folder(args.out, args.overwrite)


def _change(args: argparse.Namespace) -> int:
    from ..errors import PatchError
    from ..loading import load
    from . import _checkpoint as books

    files = args.patch if isinstance(args.patch, list) else [args.patch]
    patches = _patch_sets(files)
    _check_out(args)
    if args.action == "revert":
        return _revert(args, files[0])
    carried = books.carried(args.model) or []
    for path in files:
        if books.file_digest(path) in [c["sha256"] for c in carried]:
            raise PatchError(
                f"{args.model} already carries {path}; revert it first (interv patch revert)."
            )
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    for patch in patches:
        patch.check(model)  # every patch checked before the first one is added
    new = {}
    for path, patch in zip(files, patches, strict=True):
        entry, originals = books.apply_recorded(model, patch, path)
        carried.append(entry)
        new[entry["sha256"]] = originals
    _write(args, model, carried, new)
    return 0


def _revert(args: argparse.Namespace, path: Path) -> int:
    """Restore the original bytes of the weights ``path``'s patch changed in ``--model``."""
    from ..errors import PatchError
    from ..loading import load
    from . import _checkpoint as books

    folder, digest = Path(args.model or "the default model"), books.file_digest(path)
    carried = books.carried(args.model)
    if carried is None:
        raise PatchError(
            f"{folder} does not carry {path}: it has no {books.PROVENANCE}, so no patch was "
            "applied to it by `interv patch apply`; nothing to revert."
        )
    found = [i for i, c in enumerate(carried) if c["sha256"] == digest]
    if not found:
        raise PatchError(
            f"{path} is not among the patches {folder} carries ({books.describe(carried)}; "
            f"see its {books.PROVENANCE}); nothing to revert."
        )
    if found[0] != len(carried) - 1:
        raise PatchError(
            f"{path} is not the last patch applied to {folder}: "
            f"{books.describe(carried[found[0] + 1 :])} came after it. Revert those first, "
            "last first (each revert restores the bytes exactly)."
        )
    entry = carried[found[0]]
    originals = books.read_originals(folder, entry, path)
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    books.check_unchanged(model, entry, folder, path)
    books.restore(model, entry, originals)
    _write(args, model, carried[:-1], {})
    return 0


def _write(args: argparse.Namespace, model: Any, carried: list, new: dict) -> None:
    from ..files import output_folder
    from . import _checkpoint as books

    with output_folder(args.out, args.overwrite) as out:
        model.save_pretrained(out)
        books.write_books(out, args.model, carried, new)
    files = args.patch if isinstance(args.patch, list) else [args.patch]
    print(f"wrote {args.out} ({args.action}: {', '.join(str(f) for f in files)})")


def _meta(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get("meta", "{}"))
