"""``SteeringVector``: directions keyed by canonical hook name, as a value object.

Steering methods produce one; arithmetic (``+ - *`` and negation) composes them, and
``to_graph`` turns one into an intervention graph of ``Add`` nodes, which is how every vector is
applied. A saved vector is one safetensors file whose header carries the metadata: model
identity (name, architecture, widths, fingerprint), method, dataset, layers, creation date,
interv version and the recommended scale.

Example:
    >>> import torch
    >>> from interv.steer.vector import SteeringVector
    >>> v = SteeringVector({"blocks.3.hook_resid_post": torch.ones(8)}, method="caa")
    >>> (2 * v - v).norms()["blocks.3.hook_resid_post"] == v.norms()["blocks.3.hook_resid_post"]
    True
    >>> v.to_graph(scale=4.0, positions="from_last_prompt_token").names()
    ['caa_L3']
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..files import read_tagged, write_tagged

if TYPE_CHECKING:
    from ..graph import Graph, Positions

FORMAT = "interv.vector"
FORMAT_VERSION = 1
_LAYER = re.compile(r"^blocks\.(\d+)\.")


def model_identity(model: HookedModel) -> dict[str, Any]:
    """What a saved vector records about the model it was computed on."""
    cfg = model.cfg
    return {"name": cfg.name, "fingerprint": model.fingerprint(), "architecture": cfg.architecture,
            "d_model": cfg.d_model, "n_layers": cfg.n_layers}


def hook_layer(hook: str) -> int | None:
    """The block index of a ``blocks.{i}.…`` hook name (None for hooks outside the blocks)."""
    match = _LAYER.match(hook)
    return int(match.group(1)) if match else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance() -> dict[str, str]:
    """Creation date and interv version, for the metadata of any saved artefact."""
    from .. import __version__

    return {"created": _now(), "interv_version": __version__}


@dataclass(eq=False)
class SteeringVector:
    """One direction per hook point (``blocks.12.hook_resid_post`` -> ``[d_model]``).

    ``recommended_scale`` is the strength a multiplier of 1 stands for when the vector is
    applied (chosen by ``interv.steer.calibrate`` for the shipped vectors).
    """

    directions: dict[str, Float[Tensor, " d"]]
    method: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    recommended_scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not self.directions:
            raise ValueError("A steering vector needs at least one direction.")
        for name, vec in self.directions.items():
            if vec.dim() != 1:
                raise ValueError(f"Direction at {name!r} must be 1-D, got shape {tuple(vec.shape)}.")
            if not torch.isfinite(vec).all():
                raise ValueError(f"Direction at {name!r} contains NaN or inf.")

    @property
    def hooks(self) -> list[str]:
        return list(self.directions)

    @property
    def layers(self) -> list[int]:
        """Block indices the vector has directions at, in hook order."""
        return [layer for h in self.directions if (layer := hook_layer(h)) is not None]

    # ------------------------------------------------------------------ arithmetic
    def _combine(self, other: SteeringVector, sign: float) -> SteeringVector:
        if self.model.get("fingerprint") and other.model.get("fingerprint") and (
            self.model["fingerprint"] != other.model["fingerprint"]
        ):
            raise ValueError("Cannot combine vectors computed on different models.")
        out = {k: v.clone() for k, v in self.directions.items()}
        for name, vec in other.directions.items():
            out[name] = out[name] + sign * vec if name in out else sign * vec.clone()
        return self._with(out, method=f"{self.method}{'+' if sign > 0 else '-'}{other.method}")

    def __add__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, 1.0)

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, -1.0)

    def __mul__(self, factor: float) -> SteeringVector:
        return self._with({k: v * factor for k, v in self.directions.items()})

    __rmul__ = __mul__

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def normalized(self) -> SteeringVector:
        """Unit norm per hook."""
        return self._with({k: v / v.norm().clamp(min=1e-12) for k, v in self.directions.items()})

    def norms(self) -> dict[str, float]:
        return {k: float(v.norm()) for k, v in self.directions.items()}

    def control(self, seed: int = 0, orthogonal: bool = True) -> SteeringVector:
        """A random direction per hook with this vector's norm there (orthogonal to it unless
        ``orthogonal=False``): the control that tells an effect of this direction from an effect
        of any push of the same size at the same place. Same ``recommended_scale``, so
        ``to_graph`` applies both alike; ``seed`` picks the draw (one generator for all hooks)."""
        gen = torch.Generator().manual_seed(seed)
        out = {}
        for name, vec in self.directions.items():
            draw = torch.randn(vec.shape[0], generator=gen, dtype=torch.float64)
            unit = vec.double() / vec.double().norm().clamp(min=1e-12)
            if orthogonal and vec.shape[0] > 1:
                draw = draw - (draw @ unit) * unit
            out[name] = (draw * (vec.double().norm() / draw.norm())).to(vec.dtype)
        meta = {**self.meta, "control": {"of": self.method, "seed": seed, "orthogonal": orthogonal}}
        return self._with(out, method=f"control({self.method})", meta=meta)

    def at_layers(self, layers: Sequence[int]) -> SteeringVector:
        """Only the directions at these block indices (each must be present)."""
        missing = [layer for layer in layers if layer not in self.layers]
        if missing:
            raise ValueError(
                f"This {self.method or 'steering'} vector has no direction at layer(s) {missing}; "
                f"it has layers {self.layers}. Fix `layers` or regenerate the vector there."
            )
        keep = {h: v for h, v in self.directions.items() if hook_layer(h) in set(layers)}
        return self._with(keep)

    def _with(self, directions: dict[str, Tensor], **changes: Any) -> SteeringVector:
        fields = dict(method=self.method, model=self.model, dataset=self.dataset,
                      recommended_scale=self.recommended_scale, meta=self.meta, created=self.created)
        fields.update(changes)
        return SteeringVector(directions, **fields)

    def replace(self, **changes: Any) -> SteeringVector:
        """A copy with metadata fields changed (``recommended_scale``, ``dataset``...)."""
        return self._with(dict(self.directions), **changes)

    # ---------------------------------------------------------------------- checks
    def check(self, model: HookedModel) -> None:
        """Raise before anything runs if this vector does not fit ``model``."""
        if self.model.get("fingerprint") and self.model["fingerprint"] != model.fingerprint():
            raise ValueError(
                f"This vector was computed on {self.model.get('name')!r} (fingerprint "
                f"{self.model['fingerprint']}), not on {model.cfg.name!r} ({model.fingerprint()}); "
                "recompute it on this model (or clear vector.model if the weights are the same)."
            )
        names = set(model.hook_names())
        for name, vec in self.directions.items():
            layer = hook_layer(name)
            if layer is not None and layer >= model.cfg.n_layers:
                raise ValueError(
                    f"Direction at {name!r}: layer {layer} is out of range; the model has layers "
                    f"0..{model.cfg.n_layers - 1}."
                )
            if name not in names:
                from ..adapters import UnknownNameError

                raise UnknownNameError("hook", name, model.hook_names())
            if vec.shape[0] != model.hook_shape(name)[-1]:
                raise ValueError(
                    f"Direction at {name!r} has width {vec.shape[0]}; activations there have "
                    f"width {model.hook_shape(name)[-1]}. Was it computed for another model?"
                )

    # ---------------------------------------------------------------------- graphs
    def to_graph(
        self,
        scale: float = 1.0,
        positions: str | Positions = "all",
        *,
        layers: Sequence[int] | None = None,
        multipliers: Sequence[float] | None = None,
        model: HookedModel | None = None,
    ) -> Graph:
        """The vector as ``Add`` nodes: ``act + scale * multiplier * direction`` at each hook.

        ``layers`` picks some of the vector's layers; ``multipliers`` gives one factor per
        picked layer (or one for all); ``positions`` is a name from ``interv.steer.apply``
        (``all``, ``prompt``, ``generated``, ``from_last_prompt_token``) or a selector.
        """
        from .apply import build_vector_graph

        if model is not None:
            self.check(model)
        return build_vector_graph(self, scale, positions, layers, multipliers)

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        from .. import __version__

        return {"method": self.method, "model": self.model, "dataset": self.dataset,
                "layers": sorted(set(self.layers)), "hooks": self.hooks,
                "recommended_scale": self.recommended_scale, "created": self.created,
                "interv_version": __version__, "meta": self.meta}

    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """One safetensors file; ``dtype=torch.float16`` halves it (a 576-d vector: ~1 KB)."""
        tensors = {name: vec.to(dtype) for name, vec in self.directions.items()}
        return write_tagged(path, tensors, FORMAT, FORMAT_VERSION, self.metadata())

    @staticmethod
    def read_metadata(path: str | Path) -> dict[str, Any]:
        """The metadata of a saved vector without loading its tensors."""
        return read_tagged(path, FORMAT, FORMAT_VERSION, "steering vector", tensors=False)[0]

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        meta, tensors = read_tagged(path, FORMAT, FORMAT_VERSION, "steering vector")
        directions = {name: tensors[name].float() for name in meta["hooks"]}
        return cls(directions, method=meta["method"], model=meta["model"], dataset=meta["dataset"],
                   recommended_scale=meta["recommended_scale"], meta=meta.get("meta", {}),
                   created=meta["created"])
