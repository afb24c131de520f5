"""Input routing: edits that answer some inputs with a context put before them.

A *router* is an edit artefact on ``model.patches`` (applied and reverted like a weight patch)
with a ``route`` method: given the text of every row of a batch, it returns for each row the
token ids to put before it, or None to leave the row alone (SERAC's scope classifier and
counterfactual context, ``interv.edit.serac``). Before every forward, prefill and generation
the model asks each applied router, oldest first, and puts the prefixes it gets before the
row's tokens (after a leading BOS token); the batch is padded on the left again.

Left padding makes the shift the same for every row, so ``forward`` and ``run_with_cache``
slice logits and activations back to the input's columns and callers never see a prefix. A
batch in which no row is routed runs exactly as without routers; rows that are not routed in
a routed batch only gain padding on the left. Hooks and graphs see routed rows as they run,
prefix first. A continuation of a prefilled ``past`` is not routed again (its prefix was,
when it was prefilled). A packed batch cannot take a prefix inside a row: routing one of its
sequences is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from interv.errors import HookError

from .backends import Batch
from .text import left_pad_ids

Model = Any  # a HookedModel (``hooked`` imports this module, so the name stays unimported)


@runtime_checkable
class Router(Protocol):
    """An applied edit that puts a context before the rows it claims."""

    def route(self, model: Model, texts: Sequence[str]) -> list[list[int] | None]: ...


def routers(model: Model) -> list[Router]:
    """The routers applied to ``model``, oldest first."""
    return [p for p in model.patches if isinstance(p, Router)]


def row_texts(tokenizer: object, batch: Batch) -> list[str]:
    """The text of each row (padding and special tokens left out)."""
    pairs = zip(batch.input_ids, batch.attention_mask, strict=True)
    rows = [ids[mask.bool()].tolist() for ids, mask in pairs]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)  # type: ignore[attr-defined]


def route_batch(model: Model, batch: Batch) -> tuple[Batch, int]:
    """The batch with each routed row's prefix put in, and the shift of every column."""
    active = routers(model)
    if not active or batch.past is not None:
        return batch, 0
    texts = row_texts(model.tokenizer, batch)
    prefixes: list[list[int]] = [[] for _ in texts]
    for router in active:
        for row, prefix in enumerate(router.route(model, texts)):
            prefixes[row] += list(prefix or [])
    if not any(prefixes):
        return batch, 0
    _check_routable(batch)
    bos = model.tokenizer.bos_token_id
    rows = []
    for ids, mask, prefix in zip(batch.input_ids, batch.attention_mask, prefixes, strict=True):
        row = ids[mask.bool()].tolist()
        head = 1 if row and bos is not None and row[0] == bos and prefix else 0
        rows.append(row[:head] + prefix + row[head:])
    width = batch.input_ids.shape[1]  # at least as wide: every column shifts by the same amount
    routed = left_pad_ids(rows, model.tokenizer.pad_token_id, batch.input_ids.device, width)
    return routed, routed.input_ids.shape[1] - width


def _check_routable(batch: Batch) -> None:
    if batch.segments is not None:
        raise HookError(
            "An applied router (e.g. a SERAC memory) claims a sequence of a packed batch, which "
            "has no room for its context; revert the router or run the sequences unpacked."
        )
    mask = batch.attention_mask
    if bool((mask[:, 1:] < mask[:, :-1]).any()):
        raise HookError(
            "An applied router (e.g. a SERAC memory) needs left-padded rows, but this batch's "
            "attention mask has padding on the right; pad on the left or pass text."
        )
