"""The apply side, shared by every method: where, how strongly and on which tokens to steer.

A method's output (a ``SteeringVector``, a ``Graph`` such as LM-Steer's transform, or a
``PromptIntervention``) becomes a ``Steering``: one intervention graph plus an optional prompt
intervention. ``ApplyHParams`` is the apply half of an EasyEdit2 method file (``alg_name``,
``layers``, ``multipliers``...), with one position rule for all methods:

* ``all``: every position (EasyEdit2's default);
* ``prompt``: prompt tokens only; ``generated``: generated tokens only;
* ``from_last_prompt_token``: the last prompt token and every generated token (EasyEdit2's
  ``steer_from_end_position``; CAA's "after the instruction"). The first generated token is
  produced by the prompt's last position and so is steered too, which the CAA repository's
  mask missed.

Example:
    >>> import torch
    >>> from interv.steer.apply import ApplyHParams, steering_for
    >>> from interv.steer.vector import SteeringVector
    >>> v = SteeringVector({"blocks.2.hook_resid_post": torch.ones(8)}, method="caa")
    >>> steering = steering_for(v, ApplyHParams(multipliers=[2.0], positions="generated"))
    >>> steering.graph.nodes[0].scale
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..graph import Add, Graph, ModelRecord, Positions, positions
from ..hparams import HParams
from .prompt import PromptIntervention

if TYPE_CHECKING:
    from ..adapters import HookedModel
    from .vector import SteeringVector

POSITIONS = ("all", "prompt", "generated", "from_last_prompt_token")


def selector(name: str | Positions) -> Positions:
    """A position selector from its apply-config name (or a selector, returned as is)."""
    if isinstance(name, Positions):
        return name
    table = {
        "all": positions.all,
        "prompt": positions.prompt,
        "generated": positions.generated,
        "from_last_prompt_token": lambda: positions.slice(-1, None),
    }
    if name not in table:
        raise ValueError(f"Unknown positions {name!r}; choose one of {', '.join(POSITIONS)}.")
    return table[name]()


@dataclass(kw_only=True)
class ApplyHParams(HParams):
    """How to apply one method's output (the apply half of an EasyEdit2 method file).

    ``multipliers`` are relative to the vector's recommended scale: 1 applies it at the
    strength it was calibrated for (1.0 for an uncalibrated vector, as in EasyEdit2).
    """

    layers: list[int] | None = None  # a subset of the vector's layers (None: all of them)
    multipliers: list[float] = field(default_factory=lambda: [1.0])
    positions: str = "all"
    steer_from_end_position: bool = False  # EasyEdit2's name for from_last_prompt_token

    def __post_init__(self) -> None:
        if not self.multipliers:
            raise ValueError("`multipliers` needs at least one value.")
        if self.layers is not None and len(self.multipliers) not in (1, len(self.layers)):
            raise ValueError(
                f"`multipliers` has {len(self.multipliers)} values for {len(self.layers)} layers; "
                "give one value, or one per layer."
            )
        selector(self.positions)
        if self.steer_from_end_position and self.positions not in ("all", "from_last_prompt_token"):
            raise ValueError(
                f"steer_from_end_position: true contradicts positions: {self.positions}; keep one."
            )
        if self.steer_from_end_position:
            self.positions = "from_last_prompt_token"


def build_vector_graph(
    vector: SteeringVector,
    scale: float,
    where: str | Positions,
    layers: Sequence[int] | None,
    multipliers: Sequence[float] | None,
) -> Graph:
    """``Add`` nodes for a vector (see ``SteeringVector.to_graph``)."""
    picked = vector.at_layers(layers) if layers is not None else vector
    hooks = picked.hooks
    factors = list(multipliers) if multipliers else [1.0]
    if len(factors) == 1:
        factors = factors * len(hooks)
    if len(factors) != len(hooks):
        raise ValueError(
            f"{len(factors)} multipliers for {len(hooks)} steered hooks ({', '.join(hooks)}); "
            "give one value, or one per layer."
        )
    select = selector(where)
    stem = vector.method.split(":")[0] or "vector"
    nodes = [
        Add(hook, picked.directions[hook], scale=scale * factor, positions=select,
            name=f"{stem}_L{hook.split('.')[1]}" if hook.startswith("blocks.") else stem)
        for hook, factor in zip(hooks, factors)
    ]
    meta = {"kind": "vector", "method": vector.method, "dataset": vector.dataset,
            "recommended_scale": vector.recommended_scale, "created": vector.created,
            "apply": {"scale": scale, "multipliers": factors, "positions": _name(select)}}
    return Graph(nodes, model=record_of(vector.model), meta=meta)


def record_of(identity: dict[str, Any]) -> ModelRecord | None:
    """A graph's model record from a vector's model identity (None when incomplete)."""
    keys = ("name", "architecture", "d_model", "n_layers", "fingerprint")
    if not all(identity.get(k) for k in keys):
        return None
    return ModelRecord(*(identity[k] for k in keys))


def _name(select: Positions) -> Any:
    return select.to_yaml()


def retarget(graph: Graph, spec: ApplyHParams) -> Graph:
    """A method's graph under an apply spec: positions replaced, strength times the multiplier."""
    if spec.layers is not None:
        raise ValueError(
            "`layers` selects the layers of a steering vector; this method's output is a graph "
            f"with nodes {graph.names()}. Remove `layers` from its apply hyperparameters."
        )
    if len(spec.multipliers) != 1:
        raise ValueError("A graph takes one multiplier (it scales every node's strength).")
    select = selector(spec.positions)
    moved = Graph([n.replace(positions=select) for n in graph.nodes], model=graph.model,
                  meta=graph.meta)
    return moved * (spec.multipliers[0] * float(graph.meta.get("recommended_scale", 1.0)))


@dataclass
class Steering:
    """What an applier runs: an intervention graph and an optional prompt intervention."""

    graph: Graph = field(default_factory=Graph)
    prompt: PromptIntervention | None = None

    def __add__(self, other: Steering) -> Steering:
        if self.prompt is not None and other.prompt is not None:
            prompt: PromptIntervention | None = self.prompt + other.prompt
        else:
            prompt = self.prompt or other.prompt
        return Steering(self.graph + other.graph, prompt)

    def generate(self, model: HookedModel, prompts: Sequence[str], *, chat_template: bool = False,
                 system_prompt: str | None = None, **generation: Any) -> list[str]:
        """Generate with the graph active and the prompt intervention applied to the inputs."""
        texts, system = list(prompts), system_prompt
        if self.prompt is not None:
            texts, system = self.prompt.apply(texts, system)
        graph = self.graph if len(self.graph) else None
        return model.generate(texts, graph=graph, chat_template=chat_template,
                              system_prompt=system or None, **generation)


def steering_for(output: Any, spec: ApplyHParams | None = None) -> Steering:
    """Any method's output as a ``Steering`` under an apply spec (the default spec if None)."""
    from .vector import SteeringVector

    spec = spec or ApplyHParams()
    if isinstance(output, SteeringVector):
        graph = build_vector_graph(output, output.recommended_scale, spec.positions, spec.layers,
                                   spec.multipliers)
        return Steering(graph)
    if isinstance(output, Graph):
        return Steering(retarget(output, spec))
    if isinstance(output, PromptIntervention):
        return Steering(prompt=output)
    if isinstance(output, Steering):
        return output
    raise TypeError(
        f"Cannot apply a {type(output).__name__}; methods return a SteeringVector, a Graph or a "
        "PromptIntervention."
    )
