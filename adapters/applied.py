"""The edits applied to a model, last in first out: ``model.patches``.

A weight patch (``interv.patch.PatchSet``) that is applied pushes one entry holding the
original values of the weights it changed and the names of the weights it created; reverting
pops it and restores those bytes. An adaptor (``interv.adaptor.Adaptor``: an edit that acts
on inputs or activations, such as a SERAC memory) pushes an entry with no weights; the model
consults the adaptors on the stack as it runs (``interv.adapters.routing``). The stack only
keeps the books: applying and reverting live with the edit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from interv.errors import PatchError


@dataclass
class Applied:
    """One applied patch: the patch object, the original value of every weight it changed (in
    the order it changed them) and the weights it created as zeros."""

    patch: Any
    originals: list[tuple[str, Tensor]]
    created: list[str] = field(default_factory=list)


class AppliedPatches:
    """The patches applied to one model, oldest first."""

    def __init__(self) -> None:
        self._entries: list[Applied] = []

    def push(self, entry: Applied) -> None:
        self._entries.append(entry)

    def pop(self) -> Applied:
        return self._entries.pop()

    def take(self, patch: object) -> Applied:
        """Pop the entry of ``patch``, which must be the one applied last."""
        if self.top() is not patch:
            applied = "later patches are on top" if patch in self else "it was never applied"
            raise PatchError(
                f"Cannot revert this {type(patch).__name__}: {applied}; revert in reverse order."
            )
        return self._entries.pop()

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
    """``with edit.applied(model): ...`` for an edit with ``apply(model)`` and ``revert(model)``
    (weight patches and adaptors): reverted on exit, also after an exception."""

    @contextmanager
    def applied(self, model: Any) -> Iterator[Any]:
        self.apply(model)  # type: ignore[attr-defined]
        try:
            yield model
        finally:
            self.revert(model)  # type: ignore[attr-defined]
