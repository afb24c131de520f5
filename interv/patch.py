"""An edit is a weight patch: a delta on a canonical weight, applied and reverted bit-exactly.

A ``WeightPatch`` changes one canonical weight (``blocks.5.mlp.W_out``) by a dense delta or a
low-rank one (``U @ V.T``), in the canonical orientation of ``model.weight(name)``. A
``PatchSet`` is an ordered group of patches plus provenance (method, requests, hyperparameters,
the record of the model it was computed on). Applying keeps a copy of every touched weight on
the model's stack of applied patches (``model.patches``), so reverting restores the original
bytes; patch sets stack, and any of them reverts bit-exactly (the ones applied after it are
rebased: ``interv.adapters.applied``). Files are single safetensors files with
JSON metadata in the header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from .adapters import HookedModel
from .adapters.applied import Applied, Revertible
from .errors import PatchError
from .files import now, read_tagged, version, write_tagged
from .record import ModelRecord

FORMAT = "interv.patch"
FORMAT_VERSION = 1


@dataclass(eq=False)
class WeightPatch:
    """A change to one canonical weight: ``delta``, or ``U @ V.T`` for a 2-D weight."""

    weight: str
    delta: Float[Tensor, "..."] | None = None
    U: Float[Tensor, "rows rank"] | None = None
    V: Float[Tensor, "cols rank"] | None = None

    def __post_init__(self) -> None:
        dense, low_rank = self.delta is not None, self.U is not None or self.V is not None
        if dense == low_rank or (low_rank and (self.U is None or self.V is None)):
            raise PatchError(f"Patch on {self.weight!r} needs either `delta` or both `U` and `V`.")
        for tensor in (self.delta, self.U, self.V):
            if tensor is not None and not torch.isfinite(tensor).all():
                raise PatchError(f"Patch on {self.weight!r} contains NaN or inf values.")

    @property
    def rank(self) -> int | None:
        return None if self.U is None else self.U.shape[1]

    @property
    def shape(self) -> tuple[int, ...]:
        if self.delta is not None:
            return tuple(self.delta.shape)
        assert self.U is not None and self.V is not None
        return (self.U.shape[0], self.V.shape[0])

    def dense(self) -> Float[Tensor, "..."]:
        if self.delta is not None:
            return self.delta
        assert self.U is not None and self.V is not None
        return self.U @ self.V.T

    def tensors(self) -> dict[str, Float[Tensor, "..."]]:
        if self.delta is not None:
            return {"delta": self.delta}
        assert self.U is not None and self.V is not None
        return {"U": self.U, "V": self.V}


@dataclass(eq=False)  # identity matters: the same set is applied or not
class PatchSet(Revertible):
    """Patches applied together, with where they came from."""

    patches: list[WeightPatch] = field(default_factory=list)
    method: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    hparams: dict[str, Any] = field(default_factory=dict)
    model: ModelRecord | None = None  # the model the patches were computed on
    created: str = field(default_factory=now)

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the model the patches were computed on (None if unrecorded)."""
        return self.model.fingerprint if self.model is not None else None

    def __add__(self, other: PatchSet) -> PatchSet:
        """Stack two patch sets into one (applied in order)."""
        return PatchSet.combine([self, other], merge=False)

    def weights(self) -> list[str]:
        return [p.weight for p in self.patches]

    @classmethod
    def combine(cls, sets: Sequence[PatchSet], *, merge: bool = True) -> PatchSet:
        """One patch set with the effect of ``sets`` applied in order, one patch per weight
        (``merge=False`` keeps every patch, in order, as ``a + b`` does).

        Dense deltas on the same weight are summed; low-rank ones are concatenated so the result
        stays low-rank (``[U1 U2] @ [V1 V2].T == U1 @ V1.T + U2 @ V2.T``).
        """
        if not sets:
            raise PatchError("Nothing to combine: no patch sets given.")
        records = [s.model for s in sets if s.model is not None]
        if any(not records[0].compatible(r) for r in records[1:]):
            raise PatchError(
                "Cannot combine patch sets computed on different models "
                f"({', '.join(sorted({r.name or r.fingerprint for r in records}))})."
            )
        patches = [p for s in sets for p in s.patches]
        if merge:
            groups: dict[str, list[WeightPatch]] = {}
            for patch in patches:
                groups.setdefault(patch.weight, []).append(patch)
            patches = [_merge(name, parts) for name, parts in groups.items()]
        hparams = [s.hparams for s in sets]
        same = merge and all(h == hparams[0] for h in hparams)
        return cls(
            patches,
            method="+".join(dict.fromkeys(s.method for s in sets if s.method))
            if merge
            else "+".join(s.method for s in sets if s.method),
            requests=[r for s in sets for r in s.requests],
            hparams=hparams[0] if same else {"parts": hparams},
            model=records[0] if records else None,
        )

    # ------------------------------------------------------------------ applying
    def check(self, model: HookedModel, *, merging: bool = False) -> None:
        """Every problem that would stop ``apply`` (``merge_into``), raised before anything
        changes."""
        if self.model is not None:
            self.model.check(model, "This patch")
        for patch in self.patches:
            shape = model.weight_shape(patch.weight)  # unknown names fail here
            if shape != patch.shape:
                raise PatchError(
                    f"Patch on {patch.weight!r} has shape {patch.shape}, but the weight has "
                    f"shape {shape} (canonical orientation)."
                )
        if not merging and self in model.patches:
            raise PatchError("This patch set is already applied to the model; revert it first.")

    def apply(self, model: HookedModel) -> PatchSet:
        """Add the deltas to the live weights, keeping the originals for ``revert``.

        An optional bias the model lacks (Llama's ``mlp.b_out``) is created as zeros first and
        removed again by ``revert``.
        """
        with model.lock:
            self.check(model)
            model.patches.push(self._change(model, merged=False))
        return self

    def restore(self, model: HookedModel, entry: Applied) -> None:
        """Put back the bytes ``entry`` kept (the stack calls this; use ``revert``)."""
        with torch.no_grad():
            for weight, original in reversed(entry.originals):
                model.weight(weight).copy_(original)
        for name in reversed(entry.created):
            model.drop_weight(name)

    def merge_into(self, model: HookedModel) -> None:
        """Apply for good: it cannot be reverted.

        No copy of the originals is kept, unless an applied patch touches one of the same
        weights: then the merge is kept on the stack, so reverting that patch (which rebases
        the edits above it) applies the merge again instead of discarding it.
        """
        with model.lock:
            self.check(model, merging=True)
            if model.patches.touches(self.weights()):
                model.patches.push(self._change(model, merged=True))
                return
            _ensure_weights(model, self.patches)
            _add_deltas(model, self.patches)
            model.patches.record_merge(self)

    def _change(self, model: HookedModel, *, merged: bool) -> Applied:
        created = _ensure_weights(model, self.patches)
        originals = [(p.weight, model.weight(p.weight).detach().clone()) for p in self.patches]
        _add_deltas(model, self.patches)
        return Applied(self, originals, created, merged)

    def content_id(self) -> str:
        """A hash of the patched weights' names and deltas (names the patch in caches)."""
        if getattr(self, "_content_id", None) is None:
            digest = hashlib.sha256()
            for patch in self.patches:
                digest.update(patch.weight.encode())
                for key, tensor in patch.tensors().items():
                    flat = tensor.detach().float().cpu().contiguous()
                    digest.update(key.encode() + flat.numpy().tobytes())
            self._content_id = digest.hexdigest()
        return self._content_id

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        tensors = {
            f"patches.{i}.{key}": tensor
            for i, patch in enumerate(self.patches)
            for key, tensor in patch.tensors().items()
        }
        meta = {
            "method": self.method,
            "weights": self.weights(),
            "requests": self.requests,
            "hparams": self.hparams,
            "fingerprint": self.fingerprint,
            "model": self.model.to_dict() if self.model is not None else None,
            "created": self.created,
            "interv_version": version(),
        }
        return write_tagged(path, tensors, FORMAT, FORMAT_VERSION, meta)

    @classmethod
    def load(cls, path: str | Path) -> PatchSet:
        meta, tensors = read_tagged(
            path, FORMAT, FORMAT_VERSION, "patch", PatchError, required=("weights",)
        )
        patches = []
        for i, weight in enumerate(meta["weights"]):
            parts = {
                k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"patches.{i}.")
            }
            if not parts:
                raise PatchError(f"{path} lists {weight!r} but holds no tensors for it (corrupt).")
            patches.append(WeightPatch(weight, **parts))
        return cls(
            patches,
            method=meta.get("method", ""),
            requests=meta.get("requests", []),
            hparams=meta.get("hparams", {}),
            model=ModelRecord.from_dict(meta.get("model"))
            or ModelRecord.from_fingerprint(meta.get("fingerprint")),
            created=meta.get("created", ""),
        )

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "weight": p.weight,
                "kind": "dense" if p.delta is not None else f"rank-{p.rank}",
                "shape": list(p.shape),
                "norm": float(p.dense().norm()),
            }
            for p in self.patches
        ]


def save_checkpoint(model: HookedModel, folder: str | Path) -> Path:
    """Save the model with its current weights (patches included) as a ``transformers``
    checkpoint."""
    return model.save_pretrained(folder)


def _merge(weight: str, parts: list[WeightPatch]) -> WeightPatch:
    if len(parts) == 1:
        return parts[0]
    if all(p.U is not None for p in parts):
        return WeightPatch(
            weight,
            U=torch.cat([p.U for p in parts], 1),  # type: ignore[misc]
            V=torch.cat([p.V for p in parts], 1),
        )  # type: ignore[misc]
    total = parts[0].dense().float().clone()
    for part in parts[1:]:
        total += part.dense().float()
    return WeightPatch(weight, delta=total)


def _add_deltas(model: HookedModel, patches: Sequence[WeightPatch]) -> None:
    with torch.no_grad():
        for patch in patches:
            target = model.weight(patch.weight)
            delta = patch.dense().to(device=target.device)
            if target.dtype == torch.float32:
                target.add_(delta.float())
            else:  # add in float32, round once into the weight's dtype
                target.copy_((target.float() + delta.float()).to(target.dtype))


def _ensure_weights(model: HookedModel, patches: Sequence[WeightPatch]) -> list[str]:
    """Create the absent optional weights the patches touch; returns the created names."""
    names = dict.fromkeys(p.weight for p in patches)
    return [name for name in names if model.ensure_weight(name)]
