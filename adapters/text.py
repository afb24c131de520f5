"""Turning prompts into left-padded batches and generated ids back into text."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interv.errors import ConfigError

from .backends import Batch

Inputs = str | Sequence[str] | Tensor | Batch | Mapping[str, Any]


def ensure_pad_token(tokenizer: Any) -> None:
    """Decoder-only tokenizers often lack a pad token; padding with EOS is safe under a mask."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def prompt_texts(
    tokenizer: Any, prompts: str | Sequence[str], chat_template: bool, system_prompt: str | None
) -> list[str]:
    """The texts to tokenise for generation: chat-templated user turns, or the prompts after a
    plain system prompt."""
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    if chat_template:
        return apply_chat_template(tokenizer, texts, system_prompt)
    return [f"{system_prompt}\n\n{t}" for t in texts] if system_prompt else texts


def apply_chat_template(tokenizer: Any, prompts: list[str], system_prompt: str | None) -> list[str]:
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
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


def to_batch(
    tokenizer: Any, inputs: Inputs, device: torch.device, *, templated: bool = False
) -> Batch:
    """Tokenize text (left-padded) or accept token ids / an encoding / a Batch, on ``device``."""
    if isinstance(inputs, Batch):
        segments = None if inputs.segments is None else inputs.segments.to(device)
        return Batch(
            inputs.input_ids.to(device), inputs.attention_mask.to(device), inputs.past, segments
        )
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
        raise ConfigError("inputs is empty; pass at least one prompt.")
    ensure_pad_token(tokenizer)
    encoded = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        padding_side="left",
        add_special_tokens=not templated,
    )
    return Batch(encoded["input_ids"].to(device), encoded["attention_mask"].to(device))


def left_pad_ids(
    rows: Sequence[Sequence[int]],
    pad_id: int | None,
    device: torch.device,
    width: int | None = None,
) -> Batch:
    """A left-padded batch of token-id lists (``pad_id`` None pads with 0; the mask hides it),
    at least ``width`` columns wide. Row ``i`` starts at ``width - len(rows[i])``."""
    return _pad_ids(rows, pad_id, device, left=True, width=width)


def left_pad_offsets(
    rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device
) -> tuple[Batch, list[int]]:
    """``left_pad_ids`` and the column of each row's first token."""
    batch = left_pad_ids(rows, pad_id, device)
    return batch, [batch.input_ids.shape[1] - len(row) for row in rows]


def right_pad_ids(rows: Sequence[Sequence[int]], pad_id: int | None, device: torch.device) -> Batch:
    """A right-padded batch of token-id lists: the continuations of a ``Prefix``."""
    return _pad_ids(rows, pad_id, device, left=False)


def packed_ids(
    rows: Sequence[Sequence[int]], device: torch.device, sizes: Sequence[int] | None = None
) -> tuple[Batch, list[tuple[int, int]]]:
    """The rows one after another in the rows of a packed batch: the first ``sizes[0]`` rows in
    batch row 0 (``Batch.segments`` 0, 1, ...), the next ``sizes[1]`` in batch row 1 (again
    numbered from 0), and so on (all in one by default), right-padded to the longest (segment
    -1). Also returns where each row starts (batch row, column). Empty rows take no columns."""
    sizes = [len(rows)] if sizes is None else list(sizes)
    if sum(sizes) != len(rows) or min(sizes, default=1) < 0:
        raise ConfigError(f"sizes {sizes} must be counts that add up to the {len(rows)} rows.")
    lines: list[list[int]] = []
    segments: list[list[int]] = []
    starts: list[tuple[int, int]] = []
    bounds = list(itertools.accumulate(sizes, initial=0))
    for b, (begin, end) in enumerate(itertools.pairwise(bounds)):
        line, owner = [], []
        for i in range(begin, end):
            starts.append((b, len(line)))
            line += rows[i]
            owner += [i - begin] * len(rows[i])
        lines.append(line)
        segments.append(owner)
    width = max(len(line) for line in lines)
    as_tensor = partial(torch.tensor, device=device, dtype=torch.long)
    ids = as_tensor([line + [0] * (width - len(line)) for line in lines])
    seg = as_tensor([owner + [-1] * (width - len(owner)) for owner in segments])
    return Batch(ids, (seg >= 0).long(), segments=seg), starts


def _pad_ids(
    rows: Sequence[Sequence[int]],
    pad_id: int | None,
    device: torch.device,
    left: bool,
    width: int | None = None,
) -> Batch:
    width = max([len(r) for r in rows] + [width or 0])
    ids, mask = [], []
    for row in rows:
        fill = width - len(row)
        ids.append([pad_id or 0] * fill + list(row) if left else list(row) + [pad_id or 0] * fill)
        mask.append([0] * fill + [1] * len(row) if left else [1] * len(row) + [0] * fill)
    return Batch(
        torch.tensor(ids, device=device, dtype=torch.long),
        torch.tensor(mask, device=device, dtype=torch.long),
    )


def decode_new(tokenizer: Any, ids: Int[Tensor, "batch pos"], prompt_length: int) -> list[str]:
    return tokenizer.batch_decode(ids[:, prompt_length:], skip_special_tokens=True)
