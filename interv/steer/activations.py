"""Reading activations for vector generation: batched, sorted by length to limit padding,
stopping the forward after the deepest layer needed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.backends import Batch

# A read span per text: (start, end) token indices into the unpadded text, averaged over.
Span = tuple[int, int]


def tokenize(model: HookedModel, texts: Sequence[str], *, special_tokens: bool = True) -> list[list[int]]:
    return [model.tokenizer(t, add_special_tokens=special_tokens)["input_ids"] for t in texts]


def _deepest_layer(hooks: Sequence[str]) -> int | None:
    layers = [int(h.split(".")[1]) for h in hooks if h.startswith("blocks.")]
    return max(layers) if layers and all(h.startswith("blocks.") for h in hooks) else None


@torch.no_grad()
def read_activations(
    model: HookedModel,
    token_lists: Sequence[Sequence[int]],
    spans: Sequence[Span],
    hooks: Sequence[str],
    batch_size: int = 16,
) -> dict[str, Float[Tensor, "n d"]]:
    """Mean activation over each text's span, at every hook: ``{hook: [n_texts, d]}``."""
    if len(token_lists) != len(spans):
        raise ValueError("read_activations needs one span per text.")
    for ids, (start, end) in zip(token_lists, spans):
        if not 0 <= start < end <= len(ids):
            raise ValueError(f"Span ({start}, {end}) is outside a text of {len(ids)} tokens.")
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    stop = _deepest_layer(hooks)
    pad = model.tokenizer.pad_token_id
    out = {hook: torch.empty(0) for hook in hooks}
    rows: dict[str, list[Tensor]] = {hook: [None] * len(order) for hook in hooks}  # type: ignore[list-item]
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        width = max(len(token_lists[i]) for i in chunk)
        ids = torch.tensor([[pad] * (width - len(token_lists[i])) + list(token_lists[i]) for i in chunk])
        mask = torch.tensor([[0] * (width - len(token_lists[i])) + [1] * len(token_lists[i]) for i in chunk])
        batch = Batch(ids.to(model.device), mask.to(model.device))
        _, cache = model.run_with_cache(batch, list(hooks), stop_at_layer=stop)
        for row, i in enumerate(chunk):
            offset = width - len(token_lists[i])
            start, end = spans[i]
            for hook in hooks:
                rows[hook][i] = cache[hook][row, offset + start : offset + end].float().mean(0).cpu()
    for hook in hooks:
        out[hook] = torch.stack(rows[hook])
    return out


@torch.no_grad()
def read_token_states(
    model: HookedModel, token_lists: Sequence[Sequence[int]], hook: str, batch_size: int = 16
) -> list[Float[Tensor, "pos d"]]:
    """Every token's activation at ``hook`` for each text (unpadded), batched by length."""
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    stop = _deepest_layer([hook])
    pad = model.tokenizer.pad_token_id
    out: list[Tensor] = [torch.empty(0)] * len(token_lists)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        width = max(len(token_lists[i]) for i in chunk)
        ids = torch.tensor([[pad] * (width - len(token_lists[i])) + list(token_lists[i]) for i in chunk])
        mask = torch.tensor([[0] * (width - len(token_lists[i])) + [1] * len(token_lists[i]) for i in chunk])
        _, cache = model.run_with_cache(Batch(ids.to(model.device), mask.to(model.device)), [hook],
                                        stop_at_layer=stop)
        for row, i in enumerate(chunk):
            out[i] = cache[hook][row, width - len(token_lists[i]) :].float().cpu()
    return out
