"""Where a node acts: which positions of which rows, and which heads at ``attn.hook_z``.

Positions are resolved per forward from the ``RunState`` the adapter keeps (padded prompt
length, which positions this forward covers, the attention mask), so they stay correct with
left padding and during cached generation, where each forward sees one new token per row.

Row positions count a row's real tokens: ``0`` is its first prompt token whatever the padding,
negative numbers count back from the end of its prompt (``-1`` is the last prompt token), and
positions past the prompt are generated tokens. A mask is ``None`` (every current position),
``False`` (none) or a bool tensor ``[batch or 1, cur_len]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Bool
from torch import Tensor

from ..adapters import RunState
from ..errors import GraphError

Mask = Tensor | bool | None


@dataclass(frozen=True)
class Positions:
    """Every position (the default)."""

    kind: ClassVar[str] = "all"

    @property
    def prompt_free(self) -> bool:
        """True when the selector never picks a prompt position."""
        return False

    def bind(self, tokenizer: Any) -> Positions:
        """Resolve what needs the model's tokenizer (token strings); the rest returns itself."""
        return self

    def mask(self, run: RunState) -> Mask:
        return None

    def to_yaml(self) -> Any:
        return self.kind


@dataclass(frozen=True)
class Prompt(Positions):
    """Prompt tokens only: the whole plain forward, the first forward of a generation."""

    kind: ClassVar[str] = "prompt"

    def mask(self, run: RunState) -> Mask:
        start, end = run.past_length, run.past_length + run.cur_length
        if end <= run.prompt_length:
            return None
        if start >= run.prompt_length:
            return False
        return _current(run).unsqueeze(0) < run.prompt_length


@dataclass(frozen=True)
class Generated(Positions):
    """Generated tokens only (the forwards after the prompt's, one new token each)."""

    kind: ClassVar[str] = "generated"

    @property
    def prompt_free(self) -> bool:
        return True

    def mask(self, run: RunState) -> Mask:
        start, end = run.past_length, run.past_length + run.cur_length
        if start >= run.prompt_length:
            return None
        if end <= run.prompt_length:
            return False
        return _current(run).unsqueeze(0) >= run.prompt_length


@dataclass(frozen=True)
class LastPromptToken(Positions):
    """The last prompt token of every row (with left padding, the same column for all rows)."""

    kind: ClassVar[str] = "last_prompt_token"

    def mask(self, run: RunState) -> Mask:
        column = run.prompt_length - 1 - run.past_length
        if not 0 <= column < run.cur_length:
            return False
        if run.cur_length == 1:
            return None
        return _current(run).unsqueeze(0) == run.prompt_length - 1


@dataclass(frozen=True)
class Indices(Positions):
    """Row positions by index: ``0`` first prompt token, ``-1`` last prompt token."""

    kind: ClassVar[str] = "indices"
    indices: tuple[int, ...]

    def mask(self, run: RunState) -> Mask:
        current, padding = _current(run), _padding(run)
        found = torch.zeros(
            padding.shape[0], run.cur_length, dtype=torch.bool, device=current.device
        )
        for index in self.indices:
            target = (
                padding + index
                if index >= 0
                else torch.full_like(padding, run.prompt_length + index)
            )
            target = torch.where(target >= padding, target, -1)  # before the prompt: nothing
            found |= current.unsqueeze(0) == target.unsqueeze(1)
        return found

    def to_yaml(self) -> Any:
        return {self.kind: list(self.indices)}


@dataclass(frozen=True)
class Span(Positions):
    """Row positions ``start <= p < stop`` (negative: from the prompt's end; ``None``: open)."""

    kind: ClassVar[str] = "slice"
    start: int | None = None
    stop: int | None = None

    def mask(self, run: RunState) -> Mask:
        current, padding = _current(run), _padding(run)
        lo = (
            padding + (self.start or 0)
            if (self.start or 0) >= 0
            else run.prompt_length + self.start
        )
        lo = torch.maximum(torch.as_tensor(lo, device=current.device), padding)
        inside = current.unsqueeze(0) >= lo.unsqueeze(-1)
        if self.stop is not None:
            hi = padding + self.stop if self.stop >= 0 else run.prompt_length + self.stop
            inside &= current.unsqueeze(0) < torch.as_tensor(hi, device=current.device).reshape(
                -1, 1
            )
        return inside

    def to_yaml(self) -> Any:
        return {self.kind: [self.start, self.stop]}


@dataclass(frozen=True)
class Tokens(Positions):
    """Every occurrence of a token sequence (a string, tokenized without special tokens, or ids),
    in the prompt and in generated text."""

    kind: ClassVar[str] = "tokens"
    text: str | None = None
    ids: tuple[int, ...] = ()

    def bind(self, tokenizer: Any) -> Positions:
        if self.ids:
            return self
        assert self.text is not None
        ids = tuple(tokenizer(self.text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise GraphError(f"positions.tokens({self.text!r}) tokenizes to nothing.")
        return Tokens(self.text, ids)

    def mask(self, run: RunState) -> Mask:
        sequence = run.sequence_ids()
        if sequence is None or not self.ids:
            raise GraphError(
                "positions.tokens needs the token ids of the run; this forward was given "
                "embeddings (or the selector was not bound to a tokenizer)."
            )
        width = len(self.ids)
        total = sequence.shape[1]
        covered = torch.zeros_like(sequence, dtype=torch.bool)
        if total >= width:
            pattern = torch.as_tensor(self.ids, device=sequence.device)
            hits = (sequence.unfold(1, width, 1) == pattern).all(-1)  # [batch, total - width + 1]
            for offset in range(width):
                covered[:, offset : offset + hits.shape[1]] |= hits
        start = run.past_length
        real = _attention(run)[:, start : start + run.cur_length].bool()
        return covered[:, start : start + run.cur_length] & real

    def to_yaml(self) -> Any:
        return {self.kind: self.text if self.text is not None else list(self.ids)}


_SIMPLE = {cls.kind: cls for cls in (Positions, Prompt, Generated, LastPromptToken)}


def positions_from_yaml(value: Any) -> Positions:
    """Inverse of ``Positions.to_yaml``: ``"generated"``, ``{"indices": [0, -1]}``..."""
    if isinstance(value, str) and value in _SIMPLE:
        return _SIMPLE[value]()
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "indices" and isinstance(arg, list):
            return Indices(tuple(int(i) for i in arg))
        if kind == "slice" and isinstance(arg, list) and len(arg) == 2:
            return Span(arg[0], arg[1])
        if kind == "tokens" and isinstance(arg, (str, list)):
            return Tokens(arg) if isinstance(arg, str) else Tokens(None, tuple(int(i) for i in arg))
    known = ", ".join([*_SIMPLE, "{indices: [..]}", "{slice: [start, stop]}", "{tokens: text}"])
    raise GraphError(f"Unknown positions {value!r}; use one of {known}.")


def row_mask(rows: Sequence[int], batch: int, device: torch.device) -> Bool[Tensor, "batch 1"]:
    """``[batch, 1]`` bool: the selected batch rows."""
    if max(rows) >= batch:
        raise GraphError(
            f"rows={list(rows)} selects row {max(rows)}, but the batch has {batch} rows."
        )
    mask = torch.zeros(batch, 1, dtype=torch.bool, device=device)
    mask[list(rows)] = True
    return mask


def head_mask(heads: Sequence[int], n_heads: int) -> Bool[Tensor, "n_heads 1"]:
    """``[n_heads, 1]`` bool: the selected heads of ``attn.hook_z``."""
    mask = torch.zeros(n_heads, 1, dtype=torch.bool)
    mask[list(heads)] = True
    return mask


def _current(run: RunState) -> Tensor:
    if run.token_index is None:
        raise GraphError("No forward is running: position selectors need the model's run state.")
    return run.token_index


def _attention(run: RunState) -> Tensor:
    assert run.attention_mask is not None
    return run.attention_mask


def _padding(run: RunState) -> Tensor:
    """``[batch]``: left-padding tokens before each row's prompt."""
    prompt = _attention(run)[:, : run.prompt_length]
    return run.prompt_length - prompt.long().sum(dim=1)
