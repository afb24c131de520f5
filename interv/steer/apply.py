"""The apply side, shared by every method: where, how strongly and on which tokens to steer.

Every steering method's output is a *steering artefact* (``Steerable``): a ``SteeringVector``
(``interv.steer.vector``), a ``SteeringGraph`` such as LM-Steer's transform
(``interv.steer.graphs``) or a ``PromptIntervention`` (``interv.steer.prompt``). Under an apply
spec, ``ApplyHParams`` (the apply half of an EasyEdit2 method file: ``layers``,
``multipliers``, ``positions``...), each becomes a ``Steering``: one intervention graph plus an
optional prompt intervention, which stack with ``+``. One position rule serves all methods:

* ``all``: every position (EasyEdit2's default);
* ``prompt``: prompt tokens only; ``generated``: generated tokens only;
* ``from_last_prompt_token``: the last prompt token and every generated token (EasyEdit2's
  ``steer_from_end_position``; CAA's "after the instruction"). The first generated token is
  produced by the prompt's last position and so is steered too, which the CAA repository's
  mask missed.

Example:
    >>> import torch
    >>> from interv.steer.apply import ApplyHParams
    >>> from interv.steer.vector import SteeringVector
    >>> v = SteeringVector({"blocks.2.hook_resid_post": torch.ones(8)}, method="caa")
    >>> steering = v.steering(ApplyHParams(multipliers=[2.0], positions="generated"))
    >>> steering.graph.nodes[0].scale
    2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from ..adapters import HookedModel
from ..errors import ConfigError
from ..graph import Graph, Positions, positions
from ..graph.tensors import is_finite_number
from ..hparams import HParams

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
        raise ConfigError(f"Unknown positions {name!r}; choose one of {', '.join(POSITIONS)}.")
    return table[name]()


@dataclass(kw_only=True)
class ApplyHParams(HParams):
    """How to apply one method's output (the apply half of an EasyEdit2 method file).

    ``multipliers`` are relative to the artefact's recommended scale: 1 applies it at the
    strength it was calibrated for (1.0 for an uncalibrated vector, as in EasyEdit2).
    """

    layers: list[int] | None = None  # a subset of the vector's layers (None: all of them)
    multipliers: list[float] = field(default_factory=lambda: [1.0])
    positions: str = "all"
    steer_from_end_position: bool = False  # EasyEdit2's name for from_last_prompt_token

    def __post_init__(self) -> None:
        if not self.multipliers:
            raise ConfigError("`multipliers` needs at least one value.")
        bad = [m for m in self.multipliers if not is_finite_number(m)]
        if bad:
            raise ConfigError(
                f"`multipliers` must be finite numbers, got {bad[0]!r} in {self.multipliers}."
            )
        if self.layers is not None and len(self.multipliers) not in (1, len(self.layers)):
            raise ConfigError(
                f"`multipliers` has {len(self.multipliers)} values for {len(self.layers)} layers; "
                "give one value, or one per layer."
            )
        selector(self.positions)
        if self.steer_from_end_position and self.positions not in ("all", "from_last_prompt_token"):
            raise ConfigError(
                f"steer_from_end_position: true contradicts positions: {self.positions}; keep one."
            )
        if self.steer_from_end_position:
            self.positions = "from_last_prompt_token"


@runtime_checkable
class PromptLike(Protocol):
    """What a ``Steering`` needs of a prompt intervention (``interv.steer.prompt``)."""

    def apply(self, inputs: Sequence[str], system: str | None) -> tuple[list[str], str | None]: ...

    def __add__(self, other: Any) -> Any: ...


@dataclass
class Steering:
    """What an applier runs: an intervention graph and an optional prompt intervention."""

    graph: Graph = field(default_factory=Graph)
    prompt: PromptLike | None = None

    def __add__(self, other: Steering) -> Steering:
        if self.prompt is not None and other.prompt is not None:
            prompt: PromptLike | None = self.prompt + other.prompt
        else:
            prompt = self.prompt or other.prompt
        return Steering(self.graph + other.graph, prompt)

    def generate(
        self,
        model: HookedModel,
        prompts: Sequence[str],
        *,
        chat_template: bool = False,
        system_prompt: str | None = None,
        **generation: Any,
    ) -> list[str]:
        """Generate with the graph active and the prompt intervention applied to the inputs;
        ``generation`` holds ``HookedModel.generate``'s sampling arguments."""
        texts, system = list(prompts), system_prompt
        if self.prompt is not None:
            texts, system = self.prompt.apply(texts, system)
        graph = self.graph if len(self.graph) else None
        return model.generate(
            texts,
            graph=graph,
            chat_template=chat_template,
            system_prompt=system or None,
            **generation,
        )


@runtime_checkable
class Steerable(Protocol):
    """A steering artefact: what every ``SteerMethod.fit`` returns and the library stores."""

    method: str
    meta: dict[str, Any]

    def steering(self, spec: ApplyHParams | None = None) -> Steering:
        """The artefact under an apply spec (the default spec if None)."""
        ...

    def check(self, model: HookedModel) -> None:
        """Raise before anything runs if the artefact does not fit ``model``."""
        ...

    def save_to(self, folder: Path, dtype: torch.dtype = torch.float32) -> Path:
        """Write into a library folder (EasyEdit2's ``<method>_vector/`` level)."""
        ...

    def annotated(self, config: str, recommended_scale: float | None) -> Steerable:
        """The artefact with the recipe it came from (and a recommended scale) recorded."""
        ...

    def describe(self) -> str:
        """One line saying what the artefact is."""
        ...


def steering_for(artefact: Steerable, spec: ApplyHParams | None = None) -> Steering:
    """Any method's output as a ``Steering`` under an apply spec (the default spec if None)."""
    return artefact.steering(spec)
