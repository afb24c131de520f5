"""``interv patch inspect|apply|revert|merge``: weight patches on disk and in checkpoints.

    interv patch inspect runs/ftm/patch.safetensors
    interv patch apply runs/ftm/patch.safetensors --model SmolLM2-135M-Instruct --out edited/
    interv patch revert runs/ftm/patch.safetensors --model edited/ --out restored/
    interv patch merge a.safetensors b.safetensors --model base/ --out edited/

``apply``/``merge`` write the model with the patch(es) added as a normal ``transformers``
checkpoint folder (config, safetensors, tokenizer) plus ``interv-patches.json`` listing the
patches it carries; ``revert`` subtracts a patch listed there (exact up to float rounding —
keep the original checkpoint when you need the original bytes). Every patch is checked against
the model's fingerprint before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from .common import add_model_args

PROVENANCE = "interv-patches.json"

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


def _change(args: argparse.Namespace) -> int:
    from ..edit.runner import load_edit
    from ..loading import load
    from ..patch import PatchError, PatchSet

    files = args.patch if isinstance(args.patch, list) else [args.patch]
    edits = [load_edit(f) for f in files]  # corrupt files fail before the model loads
    for path, edit in zip(files, edits, strict=True):
        if not isinstance(edit, PatchSet):
            raise PatchError(
                f"{path} is a {edit.kind}: it changes no weight, so no checkpoint can carry "
                "it. Load it with its class (.load) and apply it to a loaded model."
            )
    patches = [e for e in edits if isinstance(e, PatchSet)]
    model = load(args.model, backend=args.backend, device=args.device, dtype=args.dtype)
    carried = _carried(args.model)
    if args.action == "revert":
        digest = _digest(files[0])
        if carried is not None and digest not in [c["sha256"] for c in carried]:
            raise PatchError(
                f"{files[0]} is not among the patches {args.model} carries "
                f"(see its {PROVENANCE}); nothing to revert."
            )
        negated = PatchSet(
            [_negate(p) for p in patches[0].patches],
            method=patches[0].method,
            model=patches[0].model,
        )
        negated.check(model)
        negated.merge_into(model)
        carried = [c for c in carried or [] if c["sha256"] != digest]
    else:
        for patch in patches:
            patch.check(model)  # every patch checked before the first one is added
        for patch in patches:
            patch.merge_into(model)
        carried = (carried or []) + [_entry(f, p) for f, p in zip(files, patches, strict=True)]
    model.save_pretrained(args.out)
    (args.out / PROVENANCE).write_text(json.dumps(carried, indent=2))
    print(f"wrote {args.out} ({args.action}: {', '.join(str(f) for f in files)})")
    return 0


def _negate(patch: Any) -> Any:
    from ..patch import WeightPatch

    if patch.delta is not None:
        return WeightPatch(patch.weight, delta=-patch.delta)
    return WeightPatch(patch.weight, U=-patch.U, V=patch.V)


def _entry(path: Path, patch: Any) -> dict[str, Any]:
    return {
        "file": str(path),
        "sha256": _digest(path),
        "method": patch.method,
        "weights": patch.weights(),
        "created": patch.created,
    }


def _carried(model: str | None) -> list[dict[str, Any]] | None:
    if model is None or not (Path(model) / PROVENANCE).is_file():
        return None
    return json.loads((Path(model) / PROVENANCE).read_text())


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _meta(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads((handle.metadata() or {}).get("meta", "{}"))
