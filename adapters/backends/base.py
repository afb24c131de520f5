"""What every backend provides: run a forward or a generation with hook functions attached."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from ..run import HookContext, HookFn, RunTracker, apply_hook_fns
from ..sites import BoundSite

# canonical hook name -> (site, functions to run there in order)
HookPlan = Mapping[str, tuple[BoundSite, list[HookFn]]]


@dataclass
class Batch:
    """Token ids and mask of a left-padded batch, with mask-derived position ids."""

    input_ids: Tensor
    attention_mask: Tensor

    @property
    def position_ids(self) -> Tensor:
        return (self.attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def model_kwargs(self) -> dict[str, Tensor]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "position_ids": self.position_ids,
        }


class StopForward(Exception):
    """Raised by a hook to end a forward early (``stop_at_layer``); caught by the backend."""


@runtime_checkable
class Backend(Protocol):
    name: str
    hf_model: nn.Module  # the transformers model whose parameters are live

    def forward(self, batch: Batch, plan: HookPlan) -> Tensor | None:
        """Logits ``[batch, pos, d_vocab]``, or None when a hook raised ``StopForward``."""
        ...

    def generate(self, batch: Batch, plan: HookPlan, generation: dict[str, Any]) -> Tensor:
        """Prompt and generated token ids, ``[batch, prompt + new]``."""
        ...

    def to(self, device: Any) -> None: ...


class ModuleRunner:
    """Forward and generation for backends that run ``hf_model`` itself while their hooks are
    installed (``hf`` and ``transformer_lens``); subclasses provide ``installed(plan)``."""

    hf_model: nn.Module

    def installed(self, plan: HookPlan) -> AbstractContextManager[None]:
        raise NotImplementedError

    def forward(self, batch: Batch, plan: HookPlan) -> Tensor | None:
        with self.installed(plan):
            try:
                return self.hf_model(**batch.model_kwargs(), use_cache=False).logits
            except StopForward:
                return None

    def generate(self, batch: Batch, plan: HookPlan, generation: dict[str, Any]) -> Tensor:
        with self.installed(plan):
            return self.hf_model.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, **generation
            )


def run_site(site: BoundSite, fns: list[HookFn], tracker: RunTracker, act: Tensor) -> Tensor:
    """Apply hook functions to one site's activation, viewing heads where the site says so."""
    ctx = HookContext(site.name, site.layer, tracker.state)
    if not site.heads:
        return apply_hook_fns(act, fns, ctx)
    per_head = act.unflatten(-1, (site.heads, -1))
    return apply_hook_fns(per_head, fns, ctx).flatten(-2)
