"""Reading activations for vector generation: batched, sorted by length to limit padding,
stopping the forward after the deepest layer needed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..adapters.text import left_pad_ids, left_pad_offsets, right_pad_ids
from ..errors import SteeringError

# A read span per text: (start, end) token indices into the unpadded text, averaged over.
Span = tuple[int, int]


def _check_spans(token_lists: Sequence[Sequence[int]], spans: Sequence[Span]) -> None:
    if len(token_lists) != len(spans):
        raise SteeringError("read_activations needs one span per text.")
    for ids, (start, end) in zip(token_lists, spans, strict=True):
        if not 0 <= start < end <= len(ids):
            raise SteeringError(f"Span ({start}, {end}) is outside a text of {len(ids)} tokens.")


def _span_means(cache, hooks, rows, spans, offsets) -> dict[str, list[Tensor]]:
    """Per hook, the mean activation over each row's span (``offsets``: where row ``i``'s
    token 0 sits in the padded batch)."""
    return {
        hook: [
            cache[hook][r, offsets[r] + a : offsets[r] + b].float().mean(0).cpu()
            for r, (a, b) in zip(rows, spans, strict=True)
        ]
        for hook in hooks
    }


@torch.no_grad()
def read_activations(
    model: HookedModel,
    token_lists: Sequence[Sequence[int]],
    spans: Sequence[Span],
    hooks: Sequence[str],
    batch_size: int = 16,
) -> dict[str, Float[Tensor, "n d"]]:
    """Mean activation over each text's span, at every hook: ``{hook: [n_texts, d]}``.

    Tokens after a span cannot change it (causal attention), so each text runs up to its span's
    end only, batched by length, and the forward stops after the deepest block needed.
    """
    _check_spans(token_lists, spans)
    rows = [list(ids[:end]) for ids, (_, end) in zip(token_lists, spans, strict=True)]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    stop = names.deepest_layer(hooks)
    out: dict[str, list[Tensor]] = {hook: [torch.empty(0)] * len(rows) for hook in hooks}
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        batch, offsets = left_pad_offsets(
            [rows[i] for i in chunk], model.tokenizer.pad_token_id, model.device
        )
        _, cache = model.run_with_cache(batch, list(hooks), stop_at_layer=stop)
        means = _span_means(cache, hooks, range(len(chunk)), [spans[i] for i in chunk], offsets)
        _scatter(out, chunk, means)
    return {hook: torch.stack(acts) for hook, acts in out.items()}


@torch.no_grad()
def read_pair_activations(
    model: HookedModel,
    first: Sequence[Sequence[int]],
    first_spans: Sequence[Span],
    second: Sequence[Sequence[int]],
    second_spans: Sequence[Span],
    hooks: Sequence[str],
    batch_size: int = 16,
) -> tuple[dict[str, Float[Tensor, "n d"]], dict[str, Float[Tensor, "n d"]]]:
    """``read_activations`` for paired texts that share a beginning (an A/B question with
    either answer letter, a prompt with two continuations): the shared tokens before both
    spans run once per pair (``HookedModel.prefill``), then each side continues from their
    keys and values. For CAA's A/B data this halves the work. Backends without ``prefill``
    read the whole texts instead; both paths give the same activations.
    """
    _check_spans(first, first_spans)
    _check_spans(second, second_spans)
    if len(first) != len(second):
        raise SteeringError(
            f"read_pair_activations needs as many second texts ({len(second)}) as "
            f"first texts ({len(first)})."
        )
    n = len(first)
    shared = [
        _shared_length(a, b, min(sa[0], sb[0]))
        for a, b, sa, sb in zip(first, second, first_spans, second_spans, strict=True)
    ]
    stop = names.deepest_layer(hooks)
    sides_of = ((first, first_spans), (second, second_spans))
    if stop is None or not any(shared):
        return _read_whole(model, sides_of, hooks, batch_size)
    pad = model.tokenizer.pad_token_id
    order = sorted(range(n), key=lambda i: shared[i])
    sides = [{hook: [torch.empty(0)] * n for hook in hooks} for _ in range(2)]
    for begin in range(0, n, batch_size):
        chunk = order[begin : begin + batch_size]
        if not shared[chunk[-1]]:  # nothing shared in this chunk (sorted): whole texts
            for side, (texts, spans) in zip(sides, sides_of, strict=True):
                acts = read_activations(
                    model, [texts[i] for i in chunk], [spans[i] for i in chunk], hooks, batch_size
                )
                _scatter(side, chunk, acts)
            continue
        prefixes = left_pad_ids([first[i][: shared[i]] for i in chunk], pad, model.device)
        try:
            past = model.prefill(prefixes, stop_at_layer=stop)
        except NotImplementedError:  # no prefill on this backend
            return _read_whole(model, sides_of, hooks, batch_size)
        for side, (texts, spans) in zip(sides, sides_of, strict=True):
            rows = [texts[i][shared[i] : spans[i][1]] for i in chunk]
            _, cache = model.run_with_cache(
                right_pad_ids(rows, pad, model.device), list(hooks), past=past, stop_at_layer=stop
            )
            local = [(spans[i][0] - shared[i], spans[i][1] - shared[i]) for i in chunk]
            _scatter(
                side, chunk, _span_means(cache, hooks, range(len(chunk)), local, [0] * len(chunk))
            )
    first_acts, second_acts = ({h: torch.stack(acts) for h, acts in side.items()} for side in sides)
    return first_acts, second_acts


def _scatter(target: dict[str, list[Tensor]], chunk: Sequence[int], values) -> None:
    """Put row ``r`` of a batch's per-hook values at position ``chunk[r]`` of ``target``."""
    for hook, rows in target.items():
        for row, i in enumerate(chunk):
            rows[i] = values[hook][row]


def _read_whole(model, sides_of, hooks, batch_size):
    """``read_pair_activations`` without prefixes: both sides' whole texts in one read."""
    (first, first_spans), (second, second_spans) = sides_of
    both = read_activations(
        model, [*first, *second], [*first_spans, *second_spans], hooks, batch_size
    )
    n = len(first)
    return {h: a[:n] for h, a in both.items()}, {h: a[n:] for h, a in both.items()}


def _shared_length(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """Length of the common beginning of two token lists, at most ``limit``."""
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


@torch.no_grad()
def read_token_states(
    model: HookedModel, token_lists: Sequence[Sequence[int]], hook: str, batch_size: int = 16
) -> list[Float[Tensor, "pos d"]]:
    """Every token's activation at ``hook`` for each text (unpadded), batched by length."""
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    stop = names.deepest_layer([hook])
    pad = model.tokenizer.pad_token_id
    out: list[Tensor] = [torch.empty(0)] * len(token_lists)
    for begin in range(0, len(order), batch_size):
        chunk = order[begin : begin + batch_size]
        batch, offsets = left_pad_offsets([token_lists[i] for i in chunk], pad, model.device)
        _, cache = model.run_with_cache(batch, [hook], stop_at_layer=stop)
        for row, i in enumerate(chunk):
            out[i] = cache[hook][row, offsets[row] :].float().cpu()
    return out
