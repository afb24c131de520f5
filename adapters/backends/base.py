"""What every backend provides: run a forward or a generation with hook functions attached."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from interv.errors import ConfigError, StopForward, UnsupportedError

from ..run import HookContext, HookFn, RunTracker, apply_hook_fns
from ..sites import BoundSite

# canonical hook name -> (site, functions to run there in order)
HookPlan = Mapping[str, tuple[BoundSite, list[HookFn]]]


@dataclass
class Prefix:
    """The keys and values of a batch of prefixes, for continuing each row later.

    A forward whose ``Batch.past`` is a prefix runs only the continuation tokens; row ``i`` of
    the continuation follows row ``i`` of the prefix. The stored tensors are never modified, so
    one prefix serves any number of forwards (e.g. every step of an optimisation whose change
    only affects later positions). Keys and values at padded positions are zeroed: a row whose
    prefix is empty then attends to nothing there.

    A *packed* prefix (prefilled from a packed ``Batch``) holds several sequences in each row,
    told apart by ``segments``; in a packed continuation, sequence ``s`` of row ``i`` follows
    sequence ``s`` of the prefix's row ``i``.
    """

    layers: list[tuple[Tensor, Tensor]]
    attention_mask: Tensor
    config: Any
    segments: Tensor | None = None  # packed: each position's sequence in its row; -1: padding

    @property
    def depth(self) -> int:
        """How many blocks hold keys and values (fewer than the model's after ``stop_at_layer``)."""
        return len(self.layers)

    @property
    def lengths(self) -> Int[Tensor, " batch"]:
        return self.attention_mask.long().sum(-1)

    def select(self, rows: Int[Tensor, " rows"]) -> Prefix:
        """The prefixes of ``rows`` (indices into the batch), without the columns no kept row
        uses: continue a subset of the rows without prefilling again."""
        mask = self.attention_mask[rows]
        if self.segments is None:
            used = mask.any(0).nonzero()
            cols = torch.arange(int(used.min()) if len(used) else mask.shape[1], mask.shape[1])
        else:
            cols = (self.segments[rows] >= 0).any(0).nonzero()[:, 0]
        cols = cols.to(mask.device)
        layers = [(k[rows][:, :, cols], v[rows][:, :, cols]) for k, v in self.layers]
        segments = None if self.segments is None else self.segments[rows][:, cols]
        return Prefix(layers, mask[:, cols], self.config, segments)

    def cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=self.layers, config=self.config)


@dataclass
class Batch:
    """Token ids and mask of a batch with mask-derived position ids: left-padded, or, after a
    ``past`` prefix, right-padded continuations (positions count on from each prefix).

    A *packed* batch (``segments``, numbered within each row) holds several sequences in each
    row, each attending only to itself (and to its own part of the row's packed ``past``);
    positions count within each sequence. Rows of very different lengths then cost their
    tokens, not the longest row's length times their number. (Hook contexts' ``ctx.run``
    positions count a packed row's columns, not positions within its sequences.)
    """

    input_ids: Tensor
    attention_mask: Tensor
    past: Prefix | None = None
    segments: Tensor | None = None  # packed: each position's sequence in its row; -1: padding

    @property
    def position_ids(self) -> Int[Tensor, "batch pos"]:
        if self.segments is not None:
            return self._packed_positions()
        positions = (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return positions if self.past is None else positions + self.past.lengths[:, None]

    def _packed_positions(self) -> Tensor:
        assert self.segments is not None
        past = None if self.past is None else self.past.segments
        n = 1 + max(int(s.max()) for s in (self.segments, past) if s is not None)
        onehot = F.one_hot(self.segments.clamp(min=0), n) * (self.segments >= 0)[..., None]
        positions = (onehot.cumsum(1) * onehot).sum(-1) - 1  # the count so far in each sequence
        if past is not None:
            before = (F.one_hot(past.clamp(min=0), n) * (past >= 0)[..., None]).sum(1)
            positions = positions + (onehot * before[:, None, :]).sum(-1)
        return positions.clamp(min=0)

    def model_kwargs(self, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
        """Keyword arguments of a transformers forward (a packed batch's 4D mask in ``dtype``,
        the model's)."""
        kwargs: dict[str, Any] = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
        }
        if self.past is not None and (self.past.segments is None) != (self.segments is None):
            raise ConfigError(
                "A packed prefix is continued by a packed batch (Batch.segments) "
                "and a padded one by a padded batch; prefill the same layout."
            )
        if self.segments is not None:
            kwargs["attention_mask"] = self._packed_mask(dtype)
        elif self.past is not None:
            kwargs["attention_mask"] = torch.cat(
                [self.past.attention_mask, self.attention_mask], -1
            )
        if self.past is not None:
            kwargs["past_key_values"] = self.past.cache()
        return kwargs

    def _packed_mask(self, dtype: torch.dtype) -> Tensor:
        """``[batch, 1, query, key]``, additive (0 or the dtype's minimum, which every attention
        implementation reads alike): a token sees the earlier tokens of its own sequence."""
        assert self.segments is not None
        queries = self.segments
        past = None if self.past is None else self.past.segments
        keys = queries if past is None else torch.cat([past, queries], -1)
        offset = keys.shape[1] - queries.shape[1]
        positions = torch.arange(keys.shape[1], device=keys.device)
        causal = positions[None, :] <= positions[offset:, None]
        seen = (queries[:, :, None] == keys[:, None, :]) & causal
        hidden = torch.tensor(torch.finfo(dtype).min, dtype=dtype, device=keys.device)
        return torch.zeros((), dtype=dtype, device=keys.device).where(seen, hidden)[:, None]


@runtime_checkable
class Backend(Protocol):
    name: str
    hf_model: nn.Module  # the transformers model whose parameters are live

    def forward(self, batch: Batch, plan: HookPlan) -> Float[Tensor, "batch pos d_vocab"] | None:
        """Logits ``[batch, pos, d_vocab]``, or None when a hook raised ``StopForward``."""
        ...

    def generate(
        self, batch: Batch, plan: HookPlan, generation: dict[str, Any]
    ) -> Int[Tensor, "batch pos"]:
        """Prompt and generated token ids, ``[batch, prompt + new]``."""
        ...

    def prefill(self, batch: Batch, plan: HookPlan) -> Prefix:
        """Keys and values of every layer for ``batch`` (NotImplementedError if unsupported)."""
        ...

    def to(self, device: Any) -> None: ...


class ModuleRunner(ABC):
    """Forward and generation for backends that run ``hf_model`` itself while their hooks are
    installed (``hf`` and ``transformer_lens``); subclasses provide ``installed(plan)``."""

    hf_model: nn.Module

    @abstractmethod
    def installed(self, plan: HookPlan) -> AbstractContextManager[None]:
        """A context in which the plan's hook functions run at their sites."""

    def forward(self, batch: Batch, plan: HookPlan) -> Float[Tensor, "batch pos d_vocab"] | None:
        with self.installed(plan):
            try:
                kwargs = batch.model_kwargs(self.hf_model.dtype)
                return self.hf_model(**kwargs, use_cache=batch.past is not None).logits
            except StopForward:
                return None

    @torch.no_grad()
    def prefill(self, batch: Batch, plan: HookPlan) -> Prefix:
        from transformers import DynamicCache

        if batch.past is not None:
            raise ConfigError("prefill takes a batch without a past prefix.")
        # our own cache object, so the blocks run before a StopForward keep their keys and values
        cache = DynamicCache(config=self.hf_model.config)
        with self.installed(plan):
            try:
                self.hf_model(
                    **batch.model_kwargs(self.hf_model.dtype), past_key_values=cache, use_cache=True
                )
            except StopForward:
                pass
        keep = batch.attention_mask.bool()[:, None, :, None]
        layers = [
            (k.masked_fill(~keep, 0.0), v.masked_fill(~keep, 0.0)) for k, v in _cache_tensors(cache)
        ]
        return Prefix(layers, batch.attention_mask, self.hf_model.config, batch.segments)

    def generate(
        self, batch: Batch, plan: HookPlan, generation: dict[str, Any]
    ) -> Int[Tensor, "batch pos"]:
        with self.installed(plan):
            return self.hf_model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, **generation
            )


def _cache_tensors(cache: Any) -> list[tuple[Tensor, Tensor]]:
    """The filled layers' keys and values (the blocks before a stop), full attention only."""
    layers = getattr(cache, "layers", None)
    if layers is None or any(type(layer).__name__ != "DynamicLayer" for layer in layers):
        raise UnsupportedError(
            f"prefill supports full-attention KV caches only, not {type(cache).__name__}."
        )
    return [(layer.keys, layer.values) for layer in layers if layer.is_initialized]


def run_site(
    site: BoundSite,
    fns: list[HookFn],
    tracker: RunTracker,
    act: Float[Tensor, "batch pos *features"],
) -> Float[Tensor, "batch pos *features"]:
    """Apply hook functions to one site's activation, viewing heads where the site says so."""
    ctx = HookContext(site.name, site.layer, tracker.state)
    if not site.heads:
        return apply_hook_fns(act, fns, ctx)
    per_head = act.unflatten(-1, (site.heads, -1))
    return apply_hook_fns(per_head, fns, ctx).flatten(-2)
