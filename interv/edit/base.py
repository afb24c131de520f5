"""The interface every editing method implements, and the request it edits."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..adapters import HookedModel
from ..hparams import HParams
from ..patch import PatchSet
from ..registry import Registry


class RequestError(ValueError):
    """An edit request that cannot be carried out (e.g. subject not in prompt)."""


@dataclass
class EditRequest:
    """One fact to write: ``prompt`` (containing ``subject``) should continue with ``target_new``.

    The evaluation fields (rephrases, locality and portability probes) are optional and only read
    by the metrics; methods read ``prompt``, ``subject``, ``target_new`` and ``ground_truth``.
    ``locality`` and ``portability`` map a probe-set name to ``[(prompt, answer), ...]``.
    """

    prompt: str
    target_new: str
    subject: str | None = None
    ground_truth: str | None = None
    rephrase_prompts: list[str] = field(default_factory=list)
    locality: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    portability: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    case_id: Any = None

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise RequestError("Edit request has an empty `prompt`.")
        if not self.target_new.strip():
            raise RequestError(f"Edit request {self.prompt!r} has an empty `target_new`.")
        if self.subject is not None and self.subject not in self.prompt:
            raise RequestError(
                f"Subject {self.subject!r} does not occur in prompt {self.prompt!r}; the subject "
                "must be a substring of the prompt (check spelling and capitalisation)."
            )

    def require_subject(self, method: str) -> str:
        if not self.subject:
            raise RequestError(f"{method} needs `subject` for request {self.prompt!r}.")
        return self.subject

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "subject": self.subject,
            "target_new": self.target_new,
            "ground_truth": self.ground_truth,
            "case_id": self.case_id,
        }


class EditMethod(ABC):
    """Turns requests into a ``PatchSet``; never changes the model it is given.

    A method instance may keep state across calls (e.g. AlphaEdit accumulates the keys of earlier
    edits for sequential editing); ``compute`` is called once per edit (or batch of edits).
    """

    name: ClassVar[str]
    hparams_class: ClassVar[type[HParams]]
    batchable: ClassVar[bool] = False  # may compute several requests in one call

    def __init__(self, hparams: HParams | None = None):
        self.hparams = hparams if hparams is not None else self.hparams_class()
        if not isinstance(self.hparams, self.hparams_class):
            raise TypeError(f"{self.name} expects {self.hparams_class.__name__}.")

    @abstractmethod
    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet:
        """The patch that writes ``requests`` into ``model`` (not applied)."""

    def compute_each(self, model: HookedModel, requests: Sequence[EditRequest]) -> list[PatchSet]:
        """Independent edits: for each request the patch ``compute(model, [request])`` makes on
        the model as it is. Methods that can share work between them (ROME) override this."""
        return [self.compute(model, [request]) for request in requests]

    @property
    def independent_group(self) -> int:
        """How many independent edits ``compute_each`` is best given at once."""
        return 1

    def check_layers(self, model: HookedModel, layers: Sequence[int]) -> None:
        bad = [layer for layer in layers if not 0 <= layer < model.cfg.n_layers]
        if bad:
            raise ValueError(
                f"{self.name}: layer(s) {bad} out of range; {model.cfg.name} has layers "
                f"0..{model.cfg.n_layers - 1}. Fix `layers` in the hyperparameters."
            )

    def patch_set(self, model: HookedModel, requests: Sequence[EditRequest], patches: list) -> PatchSet:
        """Wrap computed patches with provenance."""
        return PatchSet(
            patches,
            method=self.name,
            requests=[r.to_dict() for r in requests],
            hparams=self.hparams.to_dict(),
            fingerprint=model.fingerprint(),
        )


EDIT_METHODS: Registry[type[EditMethod]] = Registry("edit", "interv.edit")
