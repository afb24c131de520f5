"""Intervention graphs: typed nodes at hook points, composed, saved and compiled to hooks.

Example (with the default model)::

    import interv, torch
    from interv.graph import Add, Graph, positions
    model = interv.load()
    graph = Graph([Add("blocks.10.hook_resid_post", torch.randn(576), scale=4.0,
                       positions=positions.generated())])
    model.generate(["I think that"], graph=graph)
    with model.intervene(graph): ...
    graph.save("my_graph"); Graph.load("my_graph"); graph.fold(model)
"""

from __future__ import annotations

from ..errors import GraphError
from ..record import ModelRecord
from . import conditions, positions
from .base import Node
from .conditions import Condition, Cosine
from .graph import Graph
from .nodes import Ablate, Add, Clamp, Function, ProjectOut, Replace, Scale, Transform
from .sae_feature import SAEFeature, SAELike
from .selectors import Positions
from .serialize import FORMAT, VERSION

__all__ = [
    "FORMAT",
    "VERSION",
    "Ablate",
    "Add",
    "Clamp",
    "Condition",
    "Cosine",
    "Function",
    "Graph",
    "GraphError",
    "ModelRecord",
    "Node",
    "Positions",
    "ProjectOut",
    "Replace",
    "SAEFeature",
    "SAELike",
    "Scale",
    "Transform",
    "conditions",
    "positions",
]
