"""Steering with sparse-autoencoder features: add a feature's decoder direction, clamp a
feature's activation, or scale it.

Clamping and scaling encode the activation, change the selected features and decode again.
With ``keep_error=True`` (the default) the SAE's reconstruction error is kept: the new
activation is ``act + decode(z_changed) - decode(z)``, so features left unchanged change
nothing at all (clamping a feature to the value it already has is an exact no-op).

Any SAE object with ``encode(x) -> z``, ``decode(z) -> x`` and ``W_dec [d_sae, d_in]`` works,
e.g. a sae-lens ``SAE``. Its hook is read from ``sae.hook_name`` or sae-lens's
``sae.cfg.metadata.hook_name``; a node at another hook is refused when it is built, an SAE of
another width (``SAEError``) or, for an SAE interv trained, of another model
(``ModelMismatchError``) when the graph compiles, before any forward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from ..adapters import HookContext, HookedModel
from ..errors import GraphError, SAEError
from ..record import ModelRecord
from .base import Apply, GetTensor, Node, PutTensor, SAEResolver
from .tensors import CastCache, HookInfo, Number, check_number, check_tensor


class SAELike(Protocol):
    """What ``SAEFeature`` needs from a sparse autoencoder."""

    W_dec: Float[Tensor, "d_sae d_in"]

    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]: ...

    def decode(self, z: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_in"]: ...


def sae_hook_name(sae: Any) -> str | None:
    """The hook an SAE was trained on, if it says (``hook_name``, or sae-lens's cfg)."""
    name = getattr(sae, "hook_name", None)
    cfg = getattr(sae, "cfg", None)
    if name is None and cfg is not None:
        meta = getattr(cfg, "metadata", None)
        name = getattr(meta, "hook_name", None) or getattr(cfg, "hook_name", None)
    return name if isinstance(name, str) else None


@dataclass(eq=False, repr=False)
class SAEFeature(Node):
    """Add, clamp or scale SAE ``features`` by ``values`` (one value, or one per feature).

    ``mode="add"`` adds ``strength * sum(values[k] * W_dec[features[k]])``; ``"clamp"`` sets
    the features' activations to ``values``; ``"scale"`` multiplies them by ``values``.
    ``hook`` defaults to the SAE's hook; ``sae_id`` names the SAE in graph.yaml (SAE weights
    are not saved with a graph: ``Graph.load(dir, saes={sae_id: sae})``).
    """

    kind: ClassVar[str] = "sae_feature"
    sae: Any
    features: Sequence[int]
    mode: Literal["add", "clamp", "scale"] = "add"
    values: Number | Sequence[Number] = 1.0
    keep_error: bool = True
    hook: str | Sequence[str] | None = None
    sae_id: str = ""

    def __post_init__(self) -> None:
        declared = sae_hook_name(self.sae)
        if self.hook is None:
            if declared is None:
                raise GraphError("sae_feature node: the SAE does not say its hook; pass hook=.")
            self.hook = declared
        self.sae_id = self.sae_id or str(getattr(self.sae, "id", "") or declared or "sae")
        super().__post_init__()

    def validate(self) -> None:
        W_dec = getattr(self.sae, "W_dec", None)
        if (
            not isinstance(W_dec, Tensor)
            or W_dec.dim() != 2
            or not callable(getattr(self.sae, "encode", None))
        ):
            raise GraphError(
                f"{self.describe('sae')} needs encode, decode and W_dec [d_sae, d_in]."
            )
        declared = sae_hook_name(self.sae)
        if declared is not None and any(h != declared for h in self.hooks):
            raise GraphError(
                f"{self.describe('sae')} was trained on {declared!r}, not {list(self.hooks)}."
            )
        d_sae = W_dec.shape[0]
        self.features = tuple(int(f) for f in self.features)
        bad = [f for f in self.features if not 0 <= f < d_sae]
        if not self.features or bad:
            raise GraphError(
                f"{self.describe('features')}: index {bad or '(none)'} out of range; "
                f"the SAE has {d_sae} features."
            )
        if self.mode not in ("add", "clamp", "scale"):
            raise GraphError(
                f"{self.describe('mode')} must be 'add', 'clamp' or 'scale', got {self.mode!r}."
            )
        values = (
            [self.values] * len(self.features)
            if isinstance(self.values, (int, float))
            else list(self.values)
        )
        if len(values) != len(self.features):
            raise GraphError(
                f"{self.describe('values')}: {len(values)} values "
                f"for {len(self.features)} features."
            )
        checked = [check_number(v, self.describe("values")) for v in values]
        self.values = checked[0] if isinstance(self.values, (int, float)) else tuple(checked)

    def _values(self) -> Tensor:
        values = (
            [self.values] * len(self.features) if isinstance(self.values, float) else self.values
        )
        return torch.tensor(values, dtype=torch.float32)

    def check(self, info: HookInfo) -> None:
        d_in = self.sae.W_dec.shape[1]
        width = math.prod(info.shape)
        if d_in != width:
            raise SAEError(
                f"{self.describe('sae')} {self.sae_id!r} has d_in={d_in}, but activations at "
                f"{info.name!r} have {width} features: the SAE was trained for another model or "
                "hook. Use an SAE trained on this model's hook."
            )

    def check_model(self, model: HookedModel) -> None:
        record = getattr(self.sae, "model", None)  # HookedSAE: the model interv trained it on
        if isinstance(record, ModelRecord):
            record.check(model, f"SAE {self.sae_id!r} of {self.describe()}")

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        if self.mode == "scale":  # scales features by how much they fire: no fixed size
            return {}
        rows = self.sae.W_dec.detach()[list(self.features)].float()
        written = (self._values().to(rows.device).unsqueeze(1) * rows).sum(0)
        return {"values x W_dec": (written, self.strength)}

    def constant_delta(self, info: HookInfo) -> Float[Tensor, "*features"] | None:
        if self.mode != "add":
            return None
        rows = self.sae.W_dec.detach()[list(self.features)].float().cpu()
        check_tensor(rows, self.describe("W_dec rows"))
        return (self._values().unsqueeze(1) * rows).sum(0).reshape(info.shape) * self.strength

    def program(self, info: HookInfo) -> Apply:
        delta = self.constant_delta(info)
        if delta is not None:
            add = CastCache(delta)
            return lambda act, ctx: act + add(act)
        sae, index, s = self.sae, list(self.features), self.strength
        values, clamp, keep_error = CastCache(self._values()), self.mode == "clamp", self.keep_error

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            like = sae.W_dec
            x = act.flatten(2).to(device=like.device, dtype=like.dtype)
            z = sae.encode(x)
            changed = z.clone()
            changed[..., index] = values(z) if clamp else z[..., index] * values(z)
            new = x + (sae.decode(changed) - sae.decode(z)) if keep_error else sae.decode(changed)
            new = new.to(device=act.device, dtype=act.dtype).reshape(act.shape)
            return new if s == 1.0 else act + s * (new - act)

        return apply

    def yaml_fields(self, put: PutTensor) -> dict[str, Any]:
        fields = super().yaml_fields(put)
        fields["sae"] = self.sae_id
        del fields["sae_id"]
        return fields

    @classmethod
    def fields_from_yaml(
        cls, spec: dict[str, Any], get: GetTensor, saes: SAEResolver
    ) -> dict[str, Any]:
        fields = super().fields_from_yaml(spec, get, saes)
        if not isinstance(fields.get("sae"), str):
            raise GraphError("sae_feature node: field 'sae' must name the SAE (its sae_id).")
        fields["sae_id"] = fields["sae"]
        fields["sae"] = saes(fields["sae"])
        return fields

    def __repr__(self) -> str:
        return (
            f"SAEFeature(sae={self.sae_id!r}, features={list(self.features)}, mode={self.mode!r}, "
            f"values={self.values!r}, hook={self.hook!r}, strength={self.strength})"
        )
