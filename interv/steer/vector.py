"""``SteeringVector``: directions keyed by canonical hook name, as a value object.

Steering methods produce one; arithmetic (``+ - *`` and negation) composes them, and
``to_graph`` turns one into an intervention graph of ``Add`` nodes, which is how every vector is
applied. A saved vector is one safetensors file whose header carries the metadata: the record
of the model it was computed on (``interv.record.ModelRecord``), method, dataset, layers,
creation date, interv version and the recommended scale.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..errors import ModelMismatchError, SteeringError, UnknownNameError
from ..files import now, read_tagged, version, write_tagged
from ..graph import Add, Graph, Positions
from ..graph.tensors import is_finite_number
from ..record import ModelRecord
from .apply import ApplyHParams, Steering, selector

FORMAT = "interv.vector"
FORMAT_VERSION = 1
FILE = "vector.safetensors"


@dataclass(eq=False)
class SteeringVector:
    """One direction per hook point (``blocks.12.hook_resid_post`` -> ``[d_model]``).

    ``recommended_scale`` is the strength a multiplier of 1 stands for when the vector is
    applied (chosen by ``interv.steer.calibrate`` for the shipped vectors).
    """

    directions: dict[str, Float[Tensor, " d"]]
    method: str = ""
    model: ModelRecord | None = None
    dataset: str = ""
    recommended_scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=now)

    def __post_init__(self) -> None:
        if not self.directions:
            raise SteeringError("A steering vector needs at least one direction.")
        self._check_directions()
        if not is_finite_number(self.recommended_scale):
            raise SteeringError(
                f"recommended_scale must be a finite number, got {self.recommended_scale!r}."
            )

    def _check_directions(self) -> None:
        for name, vec in self.directions.items():
            if not isinstance(vec, Tensor) or not vec.is_floating_point():
                kind = vec.dtype if isinstance(vec, Tensor) else type(vec).__name__
                raise SteeringError(
                    f"Direction at {name!r} must be a floating-point tensor, got {kind}."
                )
            if vec.dim() != 1:
                raise SteeringError(
                    f"Direction at {name!r} must be 1-D, got shape {tuple(vec.shape)}."
                )
            if not torch.isfinite(vec).all():
                raise SteeringError(
                    f"Direction at {name!r} contains NaN or inf; check how it was computed "
                    "(or what changed it since)."
                )

    @property
    def hooks(self) -> list[str]:
        return list(self.directions)

    @property
    def layers(self) -> list[int]:
        """Block indices the vector has directions at, in hook order."""
        return [layer for h in self.directions if (layer := names.layer_of(h)) is not None]

    # ------------------------------------------------------------------ arithmetic
    def _combine(self, other: SteeringVector, sign: float) -> SteeringVector:
        if self.model is not None and not self.model.compatible(other.model):
            raise ModelMismatchError(
                f"Cannot combine vectors computed on different models ({self.model.name!r} "
                f"and {other.model.name if other.model else '?'!r})."
            )
        out = {k: v.clone() for k, v in self.directions.items()}
        for name, vec in other.directions.items():
            out[name] = out[name] + sign * vec if name in out else sign * vec.clone()
        return self._with(
            out,
            method=f"{self.method}{'+' if sign > 0 else '-'}{other.method}",
            model=self.model or other.model,
        )

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
            raise SteeringError(
                f"This {self.method or 'steering'} vector has no direction at layer(s) {missing}; "
                f"it has layers {self.layers}. Fix `layers` or regenerate the vector there."
            )
        keep = {h: v for h, v in self.directions.items() if names.layer_of(h) in set(layers)}
        return self._with(keep)

    def _with(self, directions: dict[str, Tensor], **changes: Any) -> SteeringVector:
        fields = dict(
            method=self.method,
            model=self.model,
            dataset=self.dataset,
            recommended_scale=self.recommended_scale,
            meta=self.meta,
            created=self.created,
        )
        fields.update(changes)
        return SteeringVector(directions, **fields)

    def replace(self, **changes: Any) -> SteeringVector:
        """A copy with metadata fields changed (``recommended_scale``, ``dataset``...)."""
        return self._with(dict(self.directions), **changes)

    # ---------------------------------------------------------------------- checks
    def check(self, model: HookedModel) -> None:
        """Raise before anything runs if this vector does not fit ``model``."""
        if self.model is not None:
            self.model.check(model, f"This {self.method or 'steering'} vector")
        self._check_directions()  # directions are mutable tensors: changed since it was made?
        hooks = set(model.hook_names())
        for name, vec in self.directions.items():
            layer = names.layer_of(name)
            if layer is not None and layer >= model.cfg.n_layers:
                raise SteeringError(
                    f"Direction at {name!r}: layer {layer} is out of range; the model has layers "
                    f"0..{model.cfg.n_layers - 1}."
                )
            if name not in hooks:
                raise UnknownNameError("hook", name, model.hook_names())
            if vec.shape[0] != model.hook_shape(name)[-1]:
                raise SteeringError(
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
        if model is not None:
            self.check(model)
        picked = self.at_layers(layers) if layers is not None else self
        hooks = picked.hooks
        factors = list(multipliers) if multipliers else [1.0]
        if len(factors) == 1:
            factors = factors * len(hooks)
        if len(factors) != len(hooks):
            raise SteeringError(
                f"{len(factors)} multipliers for {len(hooks)} steered hooks ({', '.join(hooks)}); "
                "give one value, or one per layer."
            )
        select = selector(positions)
        stem = self.method.split(":")[0] or "vector"
        nodes = [
            Add(hook, picked.directions[hook], scale=scale * factor, positions=select, name=name)
            for hook, factor, name in zip(hooks, factors, _node_names(stem, hooks), strict=True)
        ]
        meta = {
            "kind": "vector",
            "method": self.method,
            "dataset": self.dataset,
            "recommended_scale": self.recommended_scale,
            "created": self.created,
            "apply": {"scale": scale, "multipliers": factors, "positions": select.to_yaml()},
        }
        return Graph(nodes, model=self.model, meta=meta)

    def steering(self, spec: ApplyHParams | None = None) -> Steering:
        """The vector under an apply spec: ``Add`` nodes at the spec's layers, multipliers
        (times the recommended scale) and positions."""
        spec = spec or ApplyHParams()
        return Steering(
            self.to_graph(
                self.recommended_scale,
                spec.positions,
                layers=spec.layers,
                multipliers=spec.multipliers,
            )
        )

    def annotated(self, config: str, recommended_scale: float | None) -> SteeringVector:
        scale = self.recommended_scale if recommended_scale is None else float(recommended_scale)
        return self.replace(recommended_scale=scale, meta={**self.meta, "config": config})

    def describe(self) -> str:
        norms = ", ".join(f"{h}: {n:.2f}" for h, n in self.norms().items())
        return f"vector ({norms}), recommended scale {self.recommended_scale:g}"

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "model": self.model.to_dict() if self.model is not None else {},
            "dataset": self.dataset,
            "layers": sorted(set(self.layers)),
            "hooks": self.hooks,
            "recommended_scale": self.recommended_scale,
            "created": self.created,
            "interv_version": version(),
            "meta": self.meta,
        }

    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        """One safetensors file; ``dtype=torch.float16`` halves it (a 576-d vector: ~1 KB)."""
        tensors = {name: vec.to(dtype) for name, vec in self.directions.items()}
        return write_tagged(path, tensors, FORMAT, FORMAT_VERSION, self.metadata())

    def save_to(self, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
        return self.save(Path(folder) / FILE, dtype)

    @staticmethod
    def read_metadata(path: str | Path) -> dict[str, Any]:
        """The metadata of a saved vector without loading its tensors."""
        return read_tagged(
            path, FORMAT, FORMAT_VERSION, "steering vector", SteeringError, tensors=False
        )[0]

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        meta, tensors = read_tagged(
            path,
            FORMAT,
            FORMAT_VERSION,
            "steering vector",
            SteeringError,
            required=("method", "model", "dataset", "recommended_scale", "created"),
            listed="hooks",
        )
        directions = {name: tensors[name].float() for name in meta["hooks"]}
        return cls(
            directions,
            method=meta["method"],
            model=ModelRecord.from_dict(meta["model"]),
            dataset=meta["dataset"],
            recommended_scale=meta["recommended_scale"],
            meta=meta.get("meta", {}),
            created=meta["created"],
        )


def _node_names(stem: str, hooks: Sequence[str]) -> list[str]:
    """``<stem>_L<layer>`` per hook (``<stem>`` off the blocks); hooks that would share a name
    (two hooks of one layer) add their own name, as a graph's node names are unique."""
    short = [stem if (layer := names.layer_of(h)) is None else f"{stem}_L{layer}" for h in hooks]
    return [
        name
        if short.count(name) == 1
        else f"{name}_{names.in_block(h) if names.layer_of(h) is not None else h}"
        for name, h in zip(short, hooks, strict=True)
    ]
