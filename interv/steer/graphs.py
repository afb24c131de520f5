"""``SteeringGraph``: an intervention graph as a steering artefact (LM-Steer's transform).

Methods whose output is not a vector (a learned linear map of the hidden state) return their
graph wrapped in a ``SteeringGraph``. Under an apply spec its nodes move to the spec's
positions and their strengths scale by the spec's multiplier times the recommended scale
(``graph.meta["recommended_scale"]``); ``layers`` select a vector's layers and mean nothing
here, so they are refused. It saves as a graph folder (``graph.yaml`` + tensors).

Example:
    >>> import torch
    >>> from interv.graph import Graph, Transform
    >>> from interv.steer.graphs import SteeringGraph
    >>> art = SteeringGraph(Graph([Transform("ln_final.hook_normalized", torch.zeros(8, 8),
    ...                                      residual=True)], meta={"method": "lm_steer"}))
    >>> art.describe()
    "graph with nodes ['transform']"
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..adapters import HookedModel
from ..errors import SteeringError
from ..graph import Graph
from .apply import ApplyHParams, Steering, selector


@dataclass
class SteeringGraph:
    """A graph that a steering method made; ``meta`` is the graph's (method, scale, data)."""

    graph: Graph

    @property
    def method(self) -> str:
        return str(self.graph.meta.get("method", ""))

    @property
    def meta(self) -> dict[str, Any]:
        return self.graph.meta

    @property
    def recommended_scale(self) -> float:
        return float(self.graph.meta.get("recommended_scale", 1.0))

    def steering(self, spec: ApplyHParams | None = None) -> Steering:
        """The nodes at the spec's positions, strength times multiplier and recommended scale."""
        spec = spec or ApplyHParams()
        if spec.layers is not None:
            raise SteeringError(
                "`layers` selects the layers of a steering vector; this method's output is a "
                f"graph with nodes {self.graph.names()}. Remove `layers` from its apply "
                "hyperparameters."
            )
        if len(spec.multipliers) != 1:
            raise SteeringError("A graph takes one multiplier (it scales every node's strength).")
        select = selector(spec.positions)
        moved = Graph(
            [n.replace(positions=select) for n in self.graph.nodes],
            model=self.graph.model,
            meta=self.graph.meta,
        )
        return Steering(moved * (spec.multipliers[0] * self.recommended_scale))

    def to_graph(self, scale: float = 1.0, *, model: HookedModel | None = None) -> Graph:
        """The graph with every node's strength times ``scale`` (as ``SteeringVector.to_graph``;
        checked against ``model`` when given)."""
        if model is not None:
            self.check(model)
        return self.graph * scale

    def check(self, model: HookedModel) -> None:
        self.graph.hook_fns(model)  # wrong model, hook or width fails here

    def save_to(self, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
        """A graph folder, every floating-point tensor of its nodes stored as ``dtype``."""
        graph = self.graph
        if dtype != torch.float32:
            nodes = []
            for node in graph.nodes:
                tensors = {f.name: getattr(node, f.name) for f in fields(node)}
                cast = {
                    k: v.to(dtype)
                    for k, v in tensors.items()
                    if isinstance(v, torch.Tensor) and v.is_floating_point()
                }
                nodes.append(node.replace(**cast))
            graph = Graph(nodes, model=graph.model, meta=graph.meta)
        return graph.save(folder)

    @classmethod
    def load(cls, folder: str | Path) -> SteeringGraph:
        return cls(Graph.load(folder))

    def annotated(self, config: str, recommended_scale: float | None) -> SteeringGraph:
        meta = {**self.graph.meta, "config": config}
        if recommended_scale is not None:
            meta["recommended_scale"] = float(recommended_scale)
        return SteeringGraph(Graph(self.graph.nodes, model=self.graph.model, meta=meta))

    def describe(self) -> str:
        return f"graph with nodes {self.graph.names()}"
