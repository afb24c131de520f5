"""The weight changes applied to a model, last in first out: ``model.patches``.

A weight patch (``interv.patch.PatchSet``) that is applied pushes one entry holding the
original values of the weights it changed and the names of the weights it created; reverting
pops it and restores those bytes. The stack only keeps the books: applying and reverting live
with the patch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


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
