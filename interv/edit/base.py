"""The interface every editing method implements (requests live in ``interv.requests``).

An editing method turns edit requests into a weight patch (``compute``) and never changes the
model it is given; the caller applies the patch. A method file declares its hyperparameters (an
``HParams`` dataclass), its class and registers it with ``@EDIT_METHODS.register("<id>")``;
locate-then-edit methods start from ``interv.edit.locate`` instead.

Example:
    >>> from interv.edit.base import EDIT_METHODS
    >>> EDIT_METHODS.get("rome").batchable
    False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from ..adapters import HookedModel
from ..adaptor import Adaptor
from ..errors import ConfigError, RequestError, WrongTypeError
from ..hparams import HParams
from ..patch import PatchSet, WeightPatch
from ..record import ModelRecord
from ..registry import Registry
from ..requests import EditRequest

__all__ = ["EDIT_METHODS", "EditMethod", "EditRequest", "RequestError", "StepReport"]

StepReport = Callable[[str], None]  # receives a short note on each optimisation step


class EditMethod(ABC):
    """Turns requests into a ``PatchSet``; never changes the model it is given.

    A method instance may keep state across calls (e.g. AlphaEdit accumulates the keys of earlier
    edits for sequential editing); ``compute`` is called once per edit (or batch of edits).
    ``on_step``, when set (``run_edits`` sets it to its progress bar), is told about every
    optimisation step of a long computation.
    """

    name: ClassVar[str]
    hparams_class: ClassVar[type[HParams]]
    batchable: ClassVar[bool] = False  # may compute several requests in one call

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        if not isinstance(self.hparams, self.hparams_class):
            raise WrongTypeError(
                f"{self.name} expects {self.hparams_class.__name__}, got "
                f"{type(self.hparams).__name__}."
            )
        self.on_step: StepReport | None = None

    @abstractmethod
    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet | Adaptor:
        """The edit that writes ``requests`` into ``model`` (not applied): a weight patch, or an
        adaptor that behaves like one (``interv.adaptor``)."""

    def compute_each(
        self, model: HookedModel, requests: Sequence[EditRequest]
    ) -> list[PatchSet | Adaptor]:
        """Independent edits: for each request the patch ``compute(model, [request])`` makes on
        the model as it is. Methods that can share work between them (ROME) override this."""
        return [self.compute(model, [request]) for request in requests]

    @property
    def independent_group(self) -> int:
        """How many independent edits ``compute_each`` is best given at once."""
        return 1

    def prepare(self, model: HookedModel) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """One-off work before the first edit (layer statistics); ``run_edits`` times it."""

    def check_layers(self, model: HookedModel, layers: Sequence[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < model.cfg.n_layers]
        if bad:
            raise ConfigError(
                f"{self.name}: layer(s) {bad} out of range; {model.cfg.name} has layers "
                f"0..{model.cfg.n_layers - 1}. Fix `layers` in the hyperparameters."
            )

    def report(self, note: str) -> None:
        """Tell ``on_step`` (if set) how a long computation is going."""
        if self.on_step is not None:
            self.on_step(note)

    def patch_set(
        self, model: HookedModel, requests: Sequence[EditRequest], patches: list[WeightPatch]
    ) -> PatchSet:
        """Wrap computed patches with provenance."""
        return PatchSet(
            patches,
            method=self.name,
            requests=[r.to_dict() for r in requests],
            hparams=self.hparams.to_dict(),
            model=ModelRecord.of(model),
        )


EDIT_METHODS: Registry[type[EditMethod]] = Registry("edit", "interv.edit")
