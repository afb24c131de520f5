"""The interface every steering method implements and the registry of methods.

A method turns data into a steering artefact (``fit``): a ``SteeringVector`` (CAA, mean
difference, RepE, merging), an intervention ``Graph`` (LM-Steer's transform) or a
``PromptIntervention`` (prompt steering). Everything after that is shared: ``to_graph`` applies
the apply-side description (layers, multipliers, positions; ``interv.steer.apply``) and the
result runs, stacks, saves and folds like any graph.

A method file declares its hyperparameters, its class and registers it:
``@STEER_METHODS.register("caa")``. ``data_kind`` says what ``fit`` takes: ``"contrast"`` (A/B
items or positive/negative pairs), ``"labelled"`` (text, label), ``"prompts"``, ``"vectors"``
or ``None`` (everything is in the hyperparameters). SAE-based methods (``sae_feature``, ``sta``)
plug in the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from ..adapters import HookedModel
from ..hparams import HParams
from ..registry import Registry

if TYPE_CHECKING:
    from .apply import ApplyHParams, Steering


class SteerMethod(ABC):
    """Turns data into a steering artefact (``fit``); ``to_graph``/``steering`` apply it."""

    name: ClassVar[str]
    hparams_class: ClassVar[type[HParams]]
    data_kind: ClassVar[str | None] = "contrast"

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        if not isinstance(self.hparams, self.hparams_class):
            raise TypeError(
                f"{self.name} expects {self.hparams_class.__name__}, got {type(self.hparams).__name__}."
            )

    @property
    def needs_data(self) -> bool:
        """Whether ``fit`` needs a dataset (False when the hyperparameters hold everything)."""
        return self.data_kind is not None

    @abstractmethod
    def fit(self, model: HookedModel, data: Any) -> Any:
        """Compute the artefact (``SteeringVector``, ``Graph`` or ``PromptIntervention``)."""

    def steering(self, output: Any, spec: ApplyHParams | None = None) -> Steering:
        """The artefact under an apply spec, as a graph plus an optional prompt intervention."""
        from .apply import steering_for

        return steering_for(output, spec)

    def check_layers(self, model: HookedModel, layers: list[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < model.cfg.n_layers]
        if bad:
            raise ValueError(
                f"{self.name}: layer(s) {bad} out of range; the model has layers 0.."
                f"{model.cfg.n_layers - 1}. Fix `layers` in the hyperparameters."
            )


STEER_METHODS: Registry[type[SteerMethod]] = Registry("steer", "interv.steer")


def method_class(name: str) -> type[SteerMethod]:
    """The registered method class for a name (EasyEdit2's ``alg_name`` values included)."""
    return STEER_METHODS.get(name)
