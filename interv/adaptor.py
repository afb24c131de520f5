"""An adaptor: an edit that acts on a model's inputs or activations instead of its weights, and
behaves like a weight patch.

A memory-based editor (SERAC, ``interv.edit.serac``) changes what the model answers without
touching a weight. Its edit is an ``Adaptor``: ``apply`` puts it on the model's stack of applied
edits (``model.patches``, shared with weight patches), where the model consults it as it runs (a
router: ``interv.adapters.routing``); ``revert`` takes it off, from anywhere on the stack, which
leaves the model bit for bit as before because nothing else changed. Adaptors stack with weight
patches and with intervention graphs, save to one safetensors file with a JSON header, and
refuse a model other than the one they were made for. A subclass holds its own state and says
how to save, load and combine itself.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .adapters import HookedModel
from .adapters.applied import Applied, Revertible
from .errors import PatchError
from .record import ModelRecord

A = TypeVar("A", bound="Adaptor")
FORMATS: dict[str, type[Adaptor]] = {}  # file format -> adaptor class, filled by subclasses


class Adaptor(Revertible, ABC):
    """An edit that is not a weight delta; subclasses are dataclasses with these fields."""

    kind: ClassVar[str] = "adaptor"  # a short name for messages ("SERAC memory")
    file_format: ClassVar[str] = ""  # the format tag of its files
    file_name: ClassVar[str] = "adaptor.safetensors"  # what `interv edit` calls its file
    method: str
    requests: list[dict[str, Any]]
    hparams: dict[str, Any]
    model: ModelRecord | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.file_format:
            FORMATS[cls.file_format] = cls

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the model the adaptor was made for (None if unrecorded)."""
        return self.model.fingerprint if self.model is not None else None

    def check(self, model: HookedModel) -> None:
        """Every problem that would stop ``apply``, raised before anything changes."""
        if self.model is not None:
            self.model.check(model, f"This {self.kind}")
        if self in model.patches:
            raise PatchError(f"This {self.kind} is already applied to the model; revert it first.")

    def apply(self: A, model: HookedModel) -> A:
        with model.lock:
            self.check(model)
            model.patches.push(Applied(self, []))
        return self

    def restore(self, model: HookedModel, entry: Applied) -> None:
        """Nothing to put back: an adaptor changes no weight (the stack calls this)."""

    def content_id(self) -> str:
        """A name unique to this adaptor object (its state may change as it is edited)."""
        if getattr(self, "_content_id", None) is None:
            self._content_id = uuid.uuid4().hex
        return self._content_id

    def merge_into(self, model: HookedModel) -> None:
        raise PatchError(
            f"A {self.kind} changes no weight, so it cannot be merged into the weights; apply it "
            "(and save it with .save) instead."
        )

    def weights(self) -> list[str]:
        """The weights the edit changes: none."""
        return []

    def __add__(self: A, other: A) -> A:
        return type(self).combine([self, other])

    @classmethod
    @abstractmethod
    def combine(cls: type[A], parts: Sequence[A]) -> A:
        """One adaptor with the edits of every part."""

    @abstractmethod
    def save(self, path: str | Path) -> Path: ...

    @classmethod
    @abstractmethod
    def load(cls: type[A], path: str | Path) -> A: ...

    @abstractmethod
    def summary(self) -> list[dict[str, Any]]:
        """One row per stored edit, for ``interv patch show``."""
