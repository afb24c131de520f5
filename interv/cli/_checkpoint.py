"""The books of a checkpoint folder that ``interv patch apply|merge|revert`` writes.

``interv-patches.json`` lists the patches the checkpoint carries, oldest first: the patch file
and its sha256, the method, the weights it changed, and for each weight its dtype and the
sha256 of its bytes after the patch. ``interv-originals-<sha256>.safetensors`` holds, for each
carried patch, the values those weights had before it (safetensors, never pickle). Reverting
copies those values back, so the reverted checkpoint holds the original bytes; it is refused
when the checkpoint does not carry the patch, when a later patch is still on top of it, or when
the weights are no longer the ones the patch left.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Shaped
from torch import Tensor

from ..adapters import HookedModel
from ..errors import PatchError
from ..files import read_json, read_tagged, write_bytes, write_json, write_tagged
from ..patch import PatchSet

PROVENANCE = "interv-patches.json"
ORIGINALS_FORMAT = "interv.patch-originals"
ORIGINALS_VERSION = 1


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def weight_digest(tensor: Shaped[Tensor, "..."]) -> str:
    """sha256 of a weight's bytes in canonical orientation (any dtype, bfloat16 included)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(flat.numpy().tobytes()).hexdigest()


def originals_file(entry: dict[str, Any]) -> str:
    return f"interv-originals-{entry['sha256']}.safetensors"


def carried(folder: str | None) -> list[dict[str, Any]] | None:
    """The patches a checkpoint folder carries (None: no ``interv-patches.json`` there)."""
    if folder is None or not (Path(folder) / PROVENANCE).is_file():
        return None
    path = Path(folder) / PROVENANCE
    entries = read_json(path, "patch provenance file", PatchError)
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) for e in entries
    ):
        raise PatchError(f"{path} must list the carried patches, each with its sha256; corrupt.")
    return entries


def describe(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e.get('file', '?')} ({e['sha256']})" for e in entries) or "none"


def apply_recorded(
    model: HookedModel, patch: PatchSet, path: Path
) -> tuple[dict[str, Any], dict[str, Shaped[Tensor, "..."]]]:
    """Merge ``patch`` into the model; returns its provenance entry and the original values of
    the weights it changed. A weight the checkpoint lacks (an optional bias) is refused: a
    ``transformers`` checkpoint of that architecture would drop it on loading."""
    weights = list(dict.fromkeys(patch.weights()))
    absent = [w for w in weights if w not in model.weight_names()]
    if absent:
        raise PatchError(
            f"{path} changes {absent[0]!r}, which {model.cfg.name} does not have (interv would "
            "create it); a checkpoint of this architecture cannot carry it. Apply the patch to "
            "a loaded model instead (PatchSet.load(path).apply(model))."
        )
    originals = {w: model.weight(w).detach().clone() for w in weights}
    patch.merge_into(model)
    entry = {
        "file": str(path),
        "sha256": file_digest(path),
        "method": patch.method,
        "weights": weights,
        "created": patch.created,
        "dtypes": {w: str(t.dtype).removeprefix("torch.") for w, t in originals.items()},
        "after": {w: weight_digest(model.weight(w)) for w in weights},
    }
    return entry, originals


def read_originals(
    folder: Path, entry: dict[str, Any], patch: Path
) -> dict[str, Shaped[Tensor, "..."]]:
    """The values the weights had before ``entry``'s patch, checked against the entry."""
    path = folder / originals_file(entry)
    if "after" not in entry or not path.is_file():
        raise PatchError(
            f"{folder} carries {patch} but holds no {path.name} with the weights' original "
            "values (an older interv wrote it), so it cannot be reverted exactly; apply the "
            "patches you want to the original checkpoint instead."
        )
    meta, tensors = read_tagged(
        path, ORIGINALS_FORMAT, ORIGINALS_VERSION, "patch originals", PatchError
    )
    missing = [w for w in entry["weights"] if w not in tensors]
    if missing or meta.get("sha256") != entry["sha256"]:
        raise PatchError(
            f"{path} does not hold the original values of {patch}'s weights "
            f"({missing[0] if missing else 'another patch'}); the checkpoint is corrupt."
        )
    return tensors


def check_unchanged(model: HookedModel, entry: dict[str, Any], folder: Path, patch: Path) -> None:
    """Refuse to restore weights that are not the ones the patch left (changed since, or
    loaded in another dtype): restoring would discard that change silently."""
    for weight in entry["weights"]:
        live = model.weight(weight)
        dtype = str(live.dtype).removeprefix("torch.")
        if dtype != entry["dtypes"].get(weight):
            raise PatchError(
                f"{folder}: {weight} is loaded as {dtype}, but {patch} was applied to it as "
                f"{entry['dtypes'].get(weight)}; pass --dtype {entry['dtypes'].get(weight)}."
            )
        if weight_digest(live) != entry["after"].get(weight):
            raise PatchError(
                f"{folder}: {weight} is not what {patch} left (it changed since the patch was "
                "applied), so restoring its original values would undo that change too; "
                "nothing was written."
            )


def restore(
    model: HookedModel, entry: dict[str, Any], originals: dict[str, Shaped[Tensor, "..."]]
) -> None:
    with torch.no_grad():
        for weight in reversed(entry["weights"]):
            model.weight(weight).copy_(originals[weight])


def write_books(
    out: Path,
    source: str | None,
    entries: list[dict[str, Any]],
    new: dict[str, dict[str, Shaped[Tensor, "..."]]],
) -> None:
    """``interv-patches.json`` and one originals file per entry: ``new`` ones (by sha256)
    written, the others copied from the ``source`` checkpoint."""
    for entry in entries:
        name = originals_file(entry)
        if entry["sha256"] in new:
            meta = {"sha256": entry["sha256"], "file": entry["file"]}
            tensors = new[entry["sha256"]]
            write_tagged(out / name, tensors, ORIGINALS_FORMAT, ORIGINALS_VERSION, meta)
        elif source is not None and (Path(source) / name).is_file():
            write_bytes(out / name, (Path(source) / name).read_bytes())
    write_json(out / PROVENANCE, entries)
