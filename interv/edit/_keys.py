"""The keys (weight inputs) at a fact's lookup token, in the prompt and in context templates.

Which token is the lookup token is ``fact_token``'s choice (``interv.tokens.encode``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..adapters.backends import Batch
from ..adapters.text import left_pad_offsets
from ..requests import EditRequest
from ..tokens import Encoded, encode
from ._templates import fill


def templated(
    model: HookedModel, request: EditRequest, templates: Sequence[str], fact_token: str, method: str
) -> list[Encoded]:
    """The request's prompt in every template, encoded with its lookup token."""
    start, end = request.subject_span(method)
    out = []
    for template in templates:
        head = template.partition("{}")[0]
        span = (len(head) + start, len(head) + end)
        out.append(encode(model, fill(template, request.prompt), span, fact_token))
    return out


def left_pad(model: HookedModel, rows: Sequence[Sequence[int]]) -> tuple[Batch, list[int]]:
    """A left-padded batch and the offset of each row's first token."""
    return left_pad_offsets(rows, model.tokenizer.pad_token_id, model.device)


@torch.no_grad()
def gather(
    model: HookedModel,
    encoded: Sequence[Encoded],
    hooks: Sequence[str],
    stop_at_layer: int | None,
    batch_size: int = 64,
) -> dict[str, Float[Tensor, "n d"]]:
    """Activations of ``hooks`` at each text's lookup token: ``{hook: [n_texts, d]}``."""
    parts: dict[str, list[Tensor]] = {h: [] for h in hooks}
    for begin in range(0, len(encoded), batch_size):
        chunk = encoded[begin : begin + batch_size]
        batch, offsets = left_pad(model, [e.ids for e in chunk])
        _, cache = model.run_with_cache(batch, list(hooks), stop_at_layer=stop_at_layer)
        rows = torch.arange(len(chunk))
        cols = torch.tensor([o + e.lookup for o, e in zip(offsets, chunk, strict=True)])
        for h in hooks:
            parts[h].append(cache[h][rows, cols].float())
    return {h: torch.cat(v) for h, v in parts.items()}


def mean_keys(
    model: HookedModel,
    requests: Sequence[EditRequest],
    layer: int,
    templates: Sequence[str],
    fact_token: str,
    method: str,
) -> Float[Tensor, "n d_mlp"]:
    """Each request's ``W_out`` input at its lookup token, averaged over the templates."""
    encoded = [e for r in requests for e in templated(model, r, templates, fact_token, method)]
    hook = names.hook("mlp.hook_post", layer)
    keys = gather(model, encoded, [hook], stop_at_layer=layer)[hook]
    return keys.view(len(requests), len(templates), -1).mean(1)
