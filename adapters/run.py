"""What a hook function sees besides the activation: which hook, which tokens, which step.

A root forward pre-hook records, for every forward the model makes (one for a plain forward;
one per step of a generation with a KV cache), where the current tokens sit in the padded
sequence. Position-aware interventions use it to stay correct under left padding and caching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interv.errors import HookError


@dataclass
class RunState:
    """Where the tokens of the current forward sit in the (left-padded) sequence.

    The current forward covers sequence positions ``past_length .. past_length + cur_length - 1``
    (``token_index`` holds the same positions as a tensor). Plain Python ints are kept next to
    the tensors so position logic never has to read a tensor back from the device.
    """

    attention_mask: Tensor | None = None  # [batch, total_len], 1 for real tokens
    token_index: Tensor | None = None  # [cur_len], index of each current token in the sequence
    prompt_length: int = 0  # padded prompt length; every row's prompt ends at prompt_length - 1
    step: int = 0  # 0 for the prompt forward, k for the forward producing token k + 1
    past_length: int = 0  # tokens already in the KV cache before this forward
    cur_length: int = 0  # tokens this forward processes
    input_ids: Tensor | None = None  # [batch, cur_len] ids of this forward (None for embeddings)
    forward_id: int = 0  # increases with every forward; keys per-forward caches
    _id_chunks: list[Tensor] = field(default_factory=list, repr=False)

    @property
    def generating(self) -> bool:
        return self.step > 0

    def sequence_ids(self) -> Int[Tensor, "batch pos"] | None:
        """Token ids of the whole sequence so far ``[batch, past + cur]`` (None if unknown)."""
        if not self._id_chunks:
            return None
        if len(self._id_chunks) > 1:
            self._id_chunks[:] = [torch.cat(self._id_chunks, dim=1)]
        return self._id_chunks[0]


@dataclass
class HookContext:
    """Passed to every hook function as its second argument (TransformerLens's ``hook``)."""

    name: str
    layer: int | None
    run: RunState = field(default_factory=RunState)


HookFn = Callable[[Tensor, HookContext], Tensor | None]


class RunTracker:
    """Keeps a ``RunState`` up to date from the root module's forward arguments."""

    def __init__(self) -> None:
        self.state = RunState()

    def attach(self, root: nn.Module) -> torch.utils.hooks.RemovableHandle:
        return root.register_forward_pre_hook(self._observe, with_kwargs=True)

    def _observe(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        current = ids if ids is not None else embeds
        if current is None:
            return
        cur_len = current.shape[1]
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 2:
            # transformers drops an all-ones mask (one unpadded prompt): the KV cache says how
            # many tokens came before this forward.
            cached = _cache_length(kwargs.get("past_key_values"))
            mask = torch.ones(
                current.shape[0], cached + cur_len, dtype=torch.long, device=current.device
            )
        total = mask.shape[1]
        past = total - cur_len
        state = self.state
        if past == 0:
            state.prompt_length, state.step = cur_len, 0
            state._id_chunks.clear()
        else:
            state.step += 1
        if ids is None:
            state._id_chunks.clear()  # embeddings only: the ids of this sequence are unknown
        elif past == 0 or state._id_chunks:
            state._id_chunks.append(ids)
        state.attention_mask = mask
        state.token_index = torch.arange(past, total, device=current.device)
        state.past_length, state.cur_length = past, cur_len
        state.input_ids = ids
        state.forward_id += 1


def _cache_length(cache: Any) -> int:
    """Tokens already held by a key-value cache (0 for none)."""
    length = getattr(cache, "get_seq_length", None)
    return int(length()) if callable(length) else 0


def apply_hook_fns(
    act: Float[Tensor, "batch pos *features"], fns: list[HookFn], ctx: HookContext
) -> Float[Tensor, "batch pos *features"]:
    """Run hook functions in order; a function returning a tensor replaces the activation."""
    for fn in fns:
        result = fn(act, ctx)
        if result is None:
            continue
        if not isinstance(result, Tensor) or result.shape != act.shape:
            got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
            raise HookError(
                f"A hook function at {ctx.name!r} returned {got}; it must return None or a "
                f"tensor of the activation's shape {tuple(act.shape)}."
            )
        act = result
    return act
