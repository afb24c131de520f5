"""The edits applied to a model: ``model.patches``, oldest first.

A weight patch (``interv.patch.PatchSet``) that is applied pushes one entry holding the
original values of the weights it changed and the names of the weights it created; an adaptor
(``interv.adaptor.Adaptor``: an edit that acts on inputs or activations, such as a SERAC
memory) pushes an entry with no weights, and the model consults the adaptors on the stack as
it runs (``interv.adapters.routing``).

Reverting the edit applied last restores its bytes. Reverting one further down *rebases*: the
edits above it are taken off (last first, each restoring its bytes), it is taken off, and the
edits above are applied again in their order, so the weights are bit for bit those of applying
the remaining edits in order to the model. A patch merged for good (``merge_into``) while an
applied patch touches one of its weights is kept as a *merged* entry: it cannot be reverted,
and a rebase under it applies it again, so a merge is never silently discarded. A merge that
touches no applied weight leaves no entry (and keeps no copy). Every operation holds the
model's lock (``HookedModel.lock``), so no forward sees a half-applied stack.

``digest()`` names what is applied and merged, for caches of what a model computes (layer
statistics); it is empty for a model as loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from interv.errors import PatchError


@runtime_checkable
class Edit(Protocol):
    """What the stack needs of an edit (``PatchSet``, ``Adaptor``)."""

    def apply(self, model: Any) -> Any: ...
    def merge_into(self, model: Any) -> None: ...
    def restore(self, model: Any, entry: Applied) -> None: ...
    def weights(self) -> list[str]: ...
    def content_id(self) -> str: ...


@dataclass
class Applied:
    """One applied edit: the edit, the original value of every weight it changed (in the order
    it changed them), the weights it created as zeros, and whether it was merged for good."""

    patch: Any
    originals: list[tuple[str, Tensor]]
    created: list[str] = field(default_factory=list)
    merged: bool = False


class AppliedPatches:
    """The edits applied to one model, oldest first."""

    def __init__(self) -> None:
        self._entries: list[Applied] = []
        self._merges: list[str] = []  # content ids of merges that left no entry

    def push(self, entry: Applied) -> None:
        self._entries.append(entry)

    def take(self, patch: object) -> Applied:
        """Pop the entry of ``patch``, which must be the one applied last."""
        if self.top() is not patch:
            applied = "later patches are on top" if patch in self else "it was never applied"
            raise PatchError(
                f"Cannot take this {type(patch).__name__} off the top: {applied}; use "
                "revert(model), which rebases the later patches."
            )
        return self._entries.pop()

    def revert(self, model: Any, patch: Edit) -> None:
        """Take ``patch`` off wherever it sits; the edits above it are applied again in order."""
        with model.lock:
            index = self._index(patch)
            if self._entries[index].merged:
                raise PatchError(
                    f"This {type(patch).__name__} was merged into the weights for good "
                    "(merge_into); it cannot be reverted. Apply patches you may want to undo."
                )
            above = self._entries[index + 1 :]
            for entry in reversed(above):
                self._entries.pop().patch.restore(model, entry)
            target = self._entries.pop()
            target.patch.restore(model, target)
            for entry in above:
                if entry.merged:
                    entry.patch.merge_into(model)
                else:
                    entry.patch.apply(model)

    def touches(self, weights: list[str]) -> bool:
        """Whether an applied edit changed or created one of ``weights``."""
        wanted = set(weights)
        return any(wanted & set(entry.patch.weights()) for entry in self._entries)

    def record_merge(self, patch: Edit) -> None:
        """Note a merge that left no entry (for ``digest``)."""
        self._merges.append(patch.content_id())

    def digest(self) -> str:
        """A name for what is applied and merged ("" for a model as loaded)."""
        if not self._entries and not self._merges:
            return ""
        parts = [f"m:{m}" for m in self._merges]
        parts += [f"{'m' if e.merged else 'a'}:{e.patch.content_id()}" for e in self._entries]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _index(self, patch: object) -> int:
        for i, entry in enumerate(self._entries):
            if entry.patch is patch:
                return i
        raise PatchError(
            f"Cannot revert this {type(patch).__name__}: it is not applied to this model "
            f"({len(self._entries)} edit(s) are)."
        )

    def top(self) -> Any:
        """The patch applied last (None when nothing is applied)."""
        return self._entries[-1].patch if self._entries else None

    def __contains__(self, patch: object) -> bool:
        return any(entry.patch is patch for entry in self._entries)

    def __iter__(self) -> Iterator[Any]:
        return iter([entry.patch for entry in self._entries])

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __repr__(self) -> str:
        return f"AppliedPatches({len(self)} applied)"


class Revertible:
    """``revert(model)`` through the model's stack, and ``with edit.applied(model): ...``
    (reverted on exit, also after an exception), for weight patches and adaptors."""

    def revert(self, model: Any) -> None:
        """Take this edit off the model, bit-exactly; edits applied after it stay applied."""
        model.patches.revert(model, self)

    @contextmanager
    def applied(self, model: Any) -> Iterator[Any]:
        self.apply(model)  # type: ignore[attr-defined]
        try:
            yield model
        finally:
            self.revert(model)
