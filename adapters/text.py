"""Turning prompts into left-padded batches and generated ids back into text."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from .backends import Batch

Inputs = str | Sequence[str] | Tensor | Batch | Mapping[str, Any]


def ensure_pad_token(tokenizer: Any) -> None:
    """Decoder-only tokenizers often lack a pad token; padding with EOS is safe under a mask."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def apply_chat_template(tokenizer: Any, prompts: list[str], system_prompt: str | None) -> list[str]:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "chat_template=True, but this tokenizer has no chat template; "
            "pass chat_template=False or load an instruction-tuned model."
        )
    texts = []
    for prompt in prompts:
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": prompt})
        texts.append(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    return texts


def to_batch(tokenizer: Any, inputs: Inputs, device: torch.device, *, templated: bool = False) -> Batch:
    """Tokenize text (left-padded) or accept token ids / an encoding / a Batch, on ``device``."""
    if isinstance(inputs, Batch):
        segments = None if inputs.segments is None else inputs.segments.to(device)
        return Batch(inputs.input_ids.to(device), inputs.attention_mask.to(device), inputs.past,
                     segments)
    if isinstance(inputs, Tensor):
        ids = inputs if inputs.dim() == 2 else inputs.unsqueeze(0)
        return Batch(ids.to(device), torch.ones_like(ids, device=device))
    if isinstance(inputs, Mapping):
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask
        return Batch(ids.to(device), mask.to(device))
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    if not texts:
        raise ValueError("inputs is empty; pass at least one prompt.")
    ensure_pad_token(tokenizer)
    encoded = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        padding_side="left",
        add_special_tokens=not templated,
    )
    return Batch(encoded["input_ids"].to(device), encoded["attention_mask"].to(device))


def left_pad_ids(rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device) -> Batch:
    """A left-padded batch of token-id lists (``pad_id`` None pads with 0; the mask hides it).
    Row ``i`` starts at ``width - len(rows[i])``."""
    return _pad_ids(rows, pad_id, device, left=True)


def left_pad_offsets(
    rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device
) -> tuple[Batch, list[int]]:
    """``left_pad_ids`` and the column of each row's first token."""
    batch = left_pad_ids(rows, pad_id, device)
    return batch, [batch.input_ids.shape[1] - len(row) for row in rows]


def right_pad_ids(rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device) -> Batch:
    """A right-padded batch of token-id lists: the continuations of a ``Prefix``."""
    return _pad_ids(rows, pad_id, device, left=False)


def packed_ids(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[Batch, list[int]]:
    """The rows one after another in a single packed row (``Batch.segments``: row ``i`` is
    sequence ``i``), and the column of each row's first token. Empty rows take no columns."""
    ids = [token for row in rows for token in row]
    segments = [i for i, row in enumerate(rows) for _ in row]
    starts = list(itertools.accumulate((len(row) for row in rows), initial=0))[:-1]
    as_row = partial(torch.tensor, device=device, dtype=torch.long)
    return Batch(as_row([ids]), torch.ones(1, len(ids), device=device, dtype=torch.long),
                 segments=as_row([segments])), starts


def _pad_ids(
    rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device, left: bool
) -> Batch:
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for row in rows:
        fill = width - len(row)
        ids.append([pad_id or 0] * fill + list(row) if left else list(row) + [pad_id or 0] * fill)
        mask.append([0] * fill + [1] * len(row) if left else [1] * len(row) + [0] * fill)
    return Batch(
        torch.tensor(ids, device=device, dtype=torch.long),
        torch.tensor(mask, device=device, dtype=torch.long),
    )


def decode_new(tokenizer: Any, ids: Tensor, prompt_length: int) -> list[str]:
    return tokenizer.batch_decode(ids[:, prompt_length:], skip_special_tokens=True)
