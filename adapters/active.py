"""Which hooks are active for a call, and one forward at a time per model.

Hook functions reach a forward in two ways: passed to the call (``hooks=``, ``graph=``), or held
by an open ``with model.hooks(...)`` / ``with model.intervene(graph)`` block. Blocks are kept
per thread and per asyncio task (a ``contextvars.ContextVar``): a block opened in one thread is
invisible to a call made by another, so two threads steering one model with different graphs
each get their own interventions. A block opened before ``asyncio.create_task`` or
``asyncio.to_thread`` is seen inside it, as context variables are.

The backends install a call's hooks on the model's shared modules for the duration of the
call, so two calls may not overlap: every forward, prefill and generation holds the model's
lock (``HookedModel.lock``, re-entrant, so a hook may run the model again), and so does every
patch that is applied or reverted. Concurrent calls are serialised, never mixed.

Blocks end in any order: leaving one removes exactly its own hooks.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from interv.errors import GraphError

from .run import HookFn


@dataclass(frozen=True, eq=False)
class Block:
    """The hooks of one open ``model.hooks`` block, and the graph they came from (if any)."""

    pairs: tuple[tuple[str, HookFn], ...]
    source: object | None = None


class ActiveHooks:
    """Open hook blocks of one model, per thread and asyncio task."""

    _ids = itertools.count()  # unique variable names, for debugging only

    def __init__(self) -> None:
        self._blocks: contextvars.ContextVar[tuple[Block, ...]] = contextvars.ContextVar(
            f"interv_hooks_{next(self._ids)}", default=()
        )
        self.lock = threading.RLock()

    def pairs(self) -> list[tuple[str, HookFn]]:
        """Hook functions of every block open in this context, oldest block first."""
        return [pair for block in self._blocks.get() for pair in block.pairs]

    def sources(self) -> list[object]:
        """Graphs of the blocks open in this context."""
        return [b.source for b in self._blocks.get() if b.source is not None]

    def refuse_active(self, source: object | None) -> None:
        """A graph that is already active here would run twice: refuse it."""
        if source is not None and any(s is source for s in self.sources()):
            raise GraphError(
                "This graph is already active in an enclosing model.intervene(...) block; "
                "passing it again (graph=, or a nested intervene) would apply it twice. Drop "
                "the second use, or build a second graph to stack them on purpose."
            )

    @contextmanager
    def block(
        self, pairs: Sequence[tuple[str, HookFn]], source: object | None = None
    ) -> Iterator[None]:
        """Keep ``pairs`` active in this context until the block ends."""
        self.refuse_active(source)
        mine = Block(tuple(pairs), source)
        self._blocks.set((*self._blocks.get(), mine))
        try:
            yield
        finally:
            self._blocks.set(tuple(b for b in self._blocks.get() if b is not mine))
