"""The interface every steering method implements and the registry of methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..adapters import HookedModel
from ..hparams import HParams
from ..registry import Registry
from .vector import SteeringVector


class SteerMethod(ABC):
    """Turns data into a steering vector (``fit``); applying it is shared machinery."""

    name: ClassVar[str]
    hparams_class: ClassVar[type[HParams]]

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        if not isinstance(self.hparams, self.hparams_class):
            raise TypeError(f"{self.name} expects {self.hparams_class.__name__}.")

    @abstractmethod
    def fit(self, model: HookedModel, data: Any) -> SteeringVector:
        """Compute the vector from data (pairs, A/B items, labelled texts...)."""

    def check_layers(self, model: HookedModel, layers: list[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < model.cfg.n_layers]
        if bad:
            raise ValueError(
                f"{self.name}: layer(s) {bad} out of range; the model has layers 0.."
                f"{model.cfg.n_layers - 1}. Fix `layers` in the hyperparameters."
            )


STEER_METHODS: Registry[type[SteerMethod]] = Registry("steer", "interv.steer")
