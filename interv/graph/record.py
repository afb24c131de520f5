"""Which model a graph was made for, so it is never applied to another one by mistake."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..adapters import HookedModel
from .errors import GraphError


@dataclass(frozen=True)
class ModelRecord:
    """Identity of the model a graph's tensors were computed on."""

    name: str
    architecture: str
    d_model: int
    n_layers: int
    fingerprint: str

    @classmethod
    def of(cls, model: HookedModel) -> ModelRecord:
        c = model.cfg
        return cls(c.name, c.architecture, c.d_model, c.n_layers, model.fingerprint())

    def check(self, model: HookedModel, what: str = "This graph") -> None:
        """Refuse a model that differs in architecture, width, depth or weights."""
        other = ModelRecord.of(model)
        differs = [
            f"{key} {mine!r} != {theirs!r}"
            for key, mine, theirs in (
                ("architecture", self.architecture, other.architecture),
                ("d_model", self.d_model, other.d_model),
                ("n_layers", self.n_layers, other.n_layers),
                ("fingerprint", self.fingerprint, other.fingerprint),
            )
            if mine != theirs
        ]
        if differs:
            raise GraphError(
                f"{what} was made for {self.name!r}, not for {other.name!r} "
                f"({'; '.join(differs)}). "
                "Load the model it was made for. If only the fingerprint differs and you know the "
                "weights match (e.g. another dtype), clear the record: graph.model = None."
            )

    def to_yaml(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_yaml(cls, spec: dict[str, Any]) -> ModelRecord:
        try:
            return cls(**spec)
        except TypeError as err:
            raise GraphError(f"graph.yaml: bad 'model' record {spec!r} ({err}).") from None
