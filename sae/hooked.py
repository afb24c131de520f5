"""``HookedSAE``: a sae-lens SAE attached to one canonical hook point of interv's models.

It is the adapter between sae-lens and interv's intervention graphs: it has ``hook_name``
(canonical), ``id`` (how a saved graph refers to it), ``encode``/``decode`` and ``W_dec``, so
it satisfies ``interv.graph.SAELike`` and ``SAEFeature`` nodes take it directly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import SAEError, UnknownNameError
from ..files import staged_files
from ..record import ModelRecord

log = logging.getLogger(__name__)


class HookedSAE:
    """A sae-lens ``SAE`` (``.sae``) reading activations at ``hook_name``.

    Parameters are frozen (inference); ``sae.sae.requires_grad_(True)`` undoes that.
    """

    def __init__(self, sae: Any, hook_name: str, *, id: str = "", source: str = ""):
        for attr in ("encode", "decode", "W_dec", "cfg"):
            if not hasattr(sae, attr):
                raise SAEError(
                    f"HookedSAE wraps a sae-lens SAE; {type(sae).__name__} has no {attr}."
                )
        self.sae = sae.eval().requires_grad_(False)
        self.hook_name = hook_name
        self.id = id or hook_name
        self.source = source

    # ------------------------------------------------------------------ shape and weights
    @property
    def cfg(self) -> Any:
        return self.sae.cfg

    @property
    def d_in(self) -> int:
        return int(self.sae.cfg.d_in)

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def architecture(self) -> str:
        return str(self.sae.cfg.architecture())

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.sae.cfg.metadata.to_dict())

    @property
    def model(self) -> ModelRecord | None:
        """The record of the model interv trained this SAE on (None for other SAEs)."""
        meta = self.metadata
        record = ModelRecord.from_dict(meta.get("interv_model"))
        if record is None and meta.get("interv_model_fingerprint"):  # written before 0.2
            record = ModelRecord(
                name=str(meta.get("model_name") or ""),
                fingerprint=str(meta["interv_model_fingerprint"]),
            )
        return record

    @property
    def W_dec(self) -> Float[Tensor, "d_sae d_in"]:
        """What one unit of each feature adds to the reconstruction (decoder rows)."""
        W = self.sae.W_dec
        if getattr(self.sae.cfg, "rescale_acts_by_decoder_norm", False):
            return W / W.norm(dim=-1, keepdim=True).clamp(min=1e-8)
        return W

    @property
    def W_enc(self) -> Float[Tensor, "d_in d_sae"]:
        return self.sae.W_enc

    @property
    def b_dec(self) -> Float[Tensor, " d_in"]:
        return self.sae.b_dec

    @property
    def device(self) -> torch.device:
        return self.sae.W_dec.device

    @property
    def dtype(self) -> torch.dtype:
        return self.sae.W_dec.dtype

    # ------------------------------------------------------------------------- running
    def encode(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_sae"]:
        """Feature activations of ``x`` (cast to the SAE's device and dtype)."""
        return self.sae.encode(x.to(device=self.device, dtype=self.dtype))

    def decode(self, z: Float[Tensor, "... d_sae"]) -> Float[Tensor, "... d_in"]:
        return self.sae.decode(z.to(device=self.device, dtype=self.dtype))

    def reconstruct(self, x: Float[Tensor, "... d_in"]) -> Float[Tensor, "... d_in"]:
        return self.decode(self.encode(x))

    # ------------------------------------------------------------------------ checking
    def check(self, model: HookedModel) -> None:
        """Raise unless this SAE reads a hook of ``model`` with its width (``d_in``) and, when
        interv trained it, was trained on this model."""
        if self.model is not None:  # first: "another model" explains a missing hook too
            self.model.check(model, f"SAE {self.id!r}")
        if self.hook_name not in model.hook_names():
            raise UnknownNameError("hook", self.hook_name, model.hook_names())
        width = math.prod(model.hook_shape(self.hook_name))
        if width != self.d_in:
            raise SAEError(
                f"SAE {self.id!r} reads {self.d_in}-wide activations, but {self.hook_name!r} of "
                f"{model.cfg.name!r} is {width} wide: the SAE was trained for another model or "
                "hook. Load an SAE trained on this model's hook, or pass the right hook=."
            )
        trained_on = self.metadata.get("model_name")
        if trained_on and Path(str(trained_on)).name.lower() != Path(model.cfg.name).name.lower():
            log.warning("SAE %r was trained on %r, not on %r.", self.id, trained_on, model.cfg.name)

    def check_features(self, features: Sequence[int]) -> list[int]:
        """``features`` as ints, or an ``SAEError`` naming the first index out of range."""
        out = [int(f) for f in features]
        bad = [f for f in out if not 0 <= f < self.d_sae]
        if bad:
            raise SAEError(
                f"Feature index {bad[0]} is out of range: SAE {self.id!r} has {self.d_sae} "
                f"features (0..{self.d_sae - 1})."
            )
        return out

    # ---------------------------------------------------------------------- moving, saving
    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> HookedSAE:
        self.sae.to(device=device, dtype=dtype)
        return self

    def save(self, folder: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write the sae-lens folder (``cfg.json`` + ``sae_weights.safetensors``), with the
        canonical hook name in its metadata; ``dtype`` converts the weights (e.g. fp16)."""
        original = self.dtype
        self.sae.cfg.metadata.hook_name = self.hook_name
        if dtype is not None:
            self.sae.to(dtype=dtype)
        try:
            with staged_files(folder) as staging:  # each file lands whole, by a rename
                self.sae.save_model(str(staging))
        finally:
            if dtype is not None:
                self.sae.to(dtype=original)
        return Path(folder)

    def __repr__(self) -> str:
        return (
            f"HookedSAE({self.id!r}, hook={self.hook_name!r}, arch={self.architecture}, "
            f"d_in={self.d_in}, d_sae={self.d_sae})"
        )
