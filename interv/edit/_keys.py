"""Where a fact is looked up, and the keys (weight inputs) found there.

The *lookup token* of a prompt is chosen by ``fact_token``: the subject's last token
(``subject_last``, ROME's default), its first token (``subject_first``) or the prompt's last token
(``last``). Positions come from the tokenizer's character offsets, so a subject that shares a
token with the text around it still maps to the token holding its last character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.backends import Batch
from ..adapters.text import left_pad_offsets
from ._templates import fill
from .base import EditRequest, RequestError

FACT_TOKENS = ("subject_last", "subject_first", "last")


@dataclass(frozen=True)
class Encoded:
    """Token ids of one text and the index of its lookup token."""

    ids: tuple[int, ...]
    lookup: int


def encode(model: HookedModel, text: str, span: tuple[int, int], fact_token: str) -> Encoded:
    """Tokenize ``text`` and find the lookup token of the subject at character ``span``."""
    if fact_token not in FACT_TOKENS:
        raise ValueError(f"fact_token must be one of {FACT_TOKENS}, got {fact_token!r}.")
    if not getattr(model.tokenizer, "is_fast", False):
        raise ValueError("Locating the subject needs a fast tokenizer (character offsets).")
    enc = model.tokenizer(text, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    if fact_token == "last":
        return Encoded(tuple(ids), len(ids) - 1)
    char = span[1] - 1 if fact_token == "subject_last" else span[0]
    for index, (start, end) in enumerate(offsets):
        if start <= char < end:
            return Encoded(tuple(ids), index)
    raise RequestError(f"Could not find the subject's token at character {char} of {text!r}.")


def subject_span(request: EditRequest, method: str) -> tuple[int, int]:
    subject = request.require_subject(method)
    start = request.prompt.find(subject)
    if start < 0:  # EditRequest checks this too; requests may be mutated after construction
        raise RequestError(f"Subject {subject!r} does not occur in prompt {request.prompt!r}.")
    return start, start + len(subject)


def templated(
    model: HookedModel, request: EditRequest, templates: Sequence[str], fact_token: str, method: str
) -> list[Encoded]:
    """The request's prompt in every template, encoded with its lookup token."""
    start, end = subject_span(request, method)
    out = []
    for template in templates:
        head = template.partition("{}")[0]
        out.append(encode(model, fill(template, request.prompt), (len(head) + start, len(head) + end), fact_token))
    return out


def left_pad(model: HookedModel, rows: Sequence[Sequence[int]]) -> tuple[Batch, list[int]]:
    """A left-padded batch and the offset of each row's first token."""
    return left_pad_offsets(rows, model.tokenizer.pad_token_id, model.device)


@torch.no_grad()
def gather(
    model: HookedModel, encoded: Sequence[Encoded], hooks: Sequence[str], stop_at_layer: int | None,
    batch_size: int = 64,
) -> dict[str, Tensor]:
    """Activations of ``hooks`` at each text's lookup token: ``{hook: [n_texts, d]}``."""
    parts: dict[str, list[Tensor]] = {h: [] for h in hooks}
    for begin in range(0, len(encoded), batch_size):
        chunk = encoded[begin : begin + batch_size]
        batch, offsets = left_pad(model, [e.ids for e in chunk])
        _, cache = model.run_with_cache(batch, list(hooks), stop_at_layer=stop_at_layer)
        rows = torch.arange(len(chunk))
        cols = torch.tensor([o + e.lookup for o, e in zip(offsets, chunk)])
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
    hook = f"blocks.{layer}.mlp.hook_post"
    keys = gather(model, encoded, [hook], stop_at_layer=layer)[hook]
    return keys.view(len(requests), len(templates), -1).mean(1)
