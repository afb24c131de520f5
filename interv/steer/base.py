"""The interface every steering method implements and the registry of methods.

A method turns data into a steering artefact (``fit``): a ``SteeringVector`` (CAA, mean
difference, RepE, merging, STA), a ``SteeringGraph`` (LM-Steer's transform) or a
``PromptIntervention`` (prompt steering). Each is ``Steerable`` (``interv.steer.apply``):
``artefact.steering(spec)`` applies it under an apply spec (layers, multipliers, positions),
and the result runs, stacks, saves and folds like any graph.

A method file declares its hyperparameters, its class and registers it:
``@STEER_METHODS.register("caa")``. The class names what ``fit`` takes and returns
(``SteerMethod[Sequence[Contrast], SteeringVector]``) and says so in ``data_kind``:
``"contrast"`` (A/B items or positive/negative pairs), ``"labelled"`` (text, label),
``"prompts"``, ``"records"`` (``{input, output, ...}`` mappings), ``"vectors"`` or ``None``
(everything is in the hyperparameters).

Example:
    >>> from interv.steer.base import STEER_METHODS
    >>> STEER_METHODS.get("caa").data_kind
    'contrast'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Generic, Literal, TypeVar

from ..adapters import HookedModel
from ..errors import ConfigError, WrongTypeError
from ..hparams import HParams
from ..registry import Registry
from .apply import ApplyHParams, Steerable

DataT = TypeVar("DataT")
ArtefactT = TypeVar("ArtefactT", bound=Steerable)
DataKind = Literal["contrast", "labelled", "prompts", "records", "vectors"]


class SteerMethod(ABC, Generic[DataT, ArtefactT]):
    """Turns data into a steering artefact (``fit``); the artefact applies itself."""

    name: ClassVar[str]
    hparams_class: ClassVar[type[HParams]]
    apply_hparams_class: ClassVar[type[ApplyHParams]] = ApplyHParams
    data_kind: ClassVar[DataKind | None] = "contrast"

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        if not isinstance(self.hparams, self.hparams_class):
            raise WrongTypeError(
                f"{self.name} expects {self.hparams_class.__name__}, got "
                f"{type(self.hparams).__name__}."
            )

    @property
    def needs_data(self) -> bool:
        """Whether ``fit`` needs a dataset (False when the hyperparameters hold everything)."""
        return self.data_kind is not None

    @abstractmethod
    def fit(self, model: HookedModel, data: DataT) -> ArtefactT:
        """Compute the artefact on ``model`` from ``data`` (see ``data_kind``)."""

    def check_layers(self, model: HookedModel, layers: list[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < model.cfg.n_layers]
        if bad:
            raise ConfigError(
                f"{self.name}: layer(s) {bad} out of range; the model has layers 0.."
                f"{model.cfg.n_layers - 1}. Fix `layers` in the hyperparameters."
            )


STEER_METHODS: Registry[type[SteerMethod]] = Registry("steer", "interv.steer")


def method_class(name: str) -> type[SteerMethod]:
    """The registered method class for a name (EasyEdit2's ``alg_name`` values included)."""
    return STEER_METHODS.get(name)
