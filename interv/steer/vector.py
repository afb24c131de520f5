"""``SteeringVector``: directions keyed by canonical hook name, as a value object.

Steering methods produce one; arithmetic (``+ - *`` and negation) composes them, and
``to_graph`` turns one into an intervention graph of ``Add`` nodes.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..adapters import HookedModel

FORMAT = "interv.vector"
FORMAT_VERSION = 1


def model_identity(model: HookedModel) -> dict[str, Any]:
    """What a saved vector records about the model it was computed on."""
    cfg = model.cfg
    return {"name": cfg.name, "fingerprint": model.fingerprint(), "architecture": cfg.architecture,
            "d_model": cfg.d_model, "n_layers": cfg.n_layers}


@dataclass(eq=False)
class SteeringVector:
    """One direction per hook point (``blocks.12.hook_resid_post`` -> ``[d_model]``)."""

    directions: dict[str, Tensor]
    method: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    recommended_scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    created: str = field(
        default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )

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

    def _with(self, directions: dict[str, Tensor], **changes: Any) -> SteeringVector:
        fields = dict(method=self.method, model=self.model, dataset=self.dataset,
                      recommended_scale=self.recommended_scale, meta=self.meta)
        fields.update(changes)
        return SteeringVector(directions, **fields)

    def check(self, model: HookedModel) -> None:
        """Raise before anything runs if this vector does not fit ``model``."""
        if self.model.get("fingerprint") and self.model["fingerprint"] != model.fingerprint():
            raise ValueError(
                f"This vector was computed on {self.model.get('name')!r} (fingerprint "
                f"{self.model['fingerprint']}), not on {model.cfg.name!r} ({model.fingerprint()}); "
                "recompute it on this model."
            )
        names = set(model.hook_names())
        for name, vec in self.directions.items():
            if name not in names:
                from ..adapters import UnknownNameError

                raise UnknownNameError("hook", name, model.hook_names())
            if vec.shape[0] != model.cfg.d_model:
                raise ValueError(
                    f"Direction at {name!r} has width {vec.shape[0]}, the model's d_model is "
                    f"{model.cfg.d_model}."
                )

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        from .. import __version__

        layers = sorted({int(h.split(".")[1]) for h in self.directions if h.startswith("blocks.")})
        return {"method": self.method, "model": self.model, "dataset": self.dataset, "layers": layers,
                "hooks": self.hooks, "recommended_scale": self.recommended_scale, "created": self.created,
                "interv_version": __version__, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: vec.detach().float().cpu().contiguous() for name, vec in self.directions.items()}
        header = {"format": FORMAT, "version": str(FORMAT_VERSION), "meta": json.dumps(self.metadata(), default=str)}
        save_file(tensors, str(path), metadata=header)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except FileNotFoundError:
            raise
        except Exception as err:
            raise ValueError(f"{path} is corrupt or not a safetensors file ({err}).") from err
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not an interv steering vector file.")
        meta = json.loads(header["meta"])
        directions = {name: tensors[name] for name in meta["hooks"]}
        return cls(directions, method=meta["method"], model=meta["model"], dataset=meta["dataset"],
                   recommended_scale=meta["recommended_scale"], meta=meta.get("meta", {}),
                   created=meta["created"])
