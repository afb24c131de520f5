"""What fits a model: the context window, and the depth of a prefilled prefix.

A prompt plus the tokens to generate must fit in ``cfg.n_ctx`` positions: beyond it positional
encodings leave the range the model was trained on and the output is garbage, not an error.
interv refuses such a call before any work, or, when the caller asks (``truncate=True``), keeps
the last tokens of each prompt that fit and warns. A wall-clock budget for long generations is
transformers' ``max_time`` (seconds), passed through ``generate(..., max_time=...)``.
"""

from __future__ import annotations

import warnings

from torch import Tensor

from interv.errors import ConfigError, StopForward

from . import names
from .backends import Batch, Prefix
from .config import ModelConfig
from .run import HookContext, HookFn


def check_length(cfg: ModelConfig, n_tokens: int, new_tokens: int = 0) -> None:
    """Refuse a sequence of ``n_tokens`` (+ ``new_tokens`` to generate) beyond the context."""
    if n_tokens + new_tokens <= cfg.n_ctx:
        return
    ask = f" + max_new_tokens {new_tokens}" if new_tokens else ""
    fix = (
        "lower max_new_tokens, shorten the prompt, or pass truncate=True to keep the last "
        "tokens of each prompt that fit"
        if new_tokens
        else "shorten the input or split it into windows"
    )
    raise ConfigError(
        f"The input is {n_tokens} tokens{ask}, more than {cfg.name or 'the model'}'s context "
        f"window of {cfg.n_ctx} positions; {fix}."
    )


def fit_prompt(cfg: ModelConfig, batch: Batch, new_tokens: int, truncate: bool) -> Batch:
    """The batch, or (``truncate``) its last columns that leave room for ``new_tokens``."""
    if new_tokens >= cfg.n_ctx:
        raise ConfigError(
            f"max_new_tokens={new_tokens} does not fit {cfg.name or 'the model'}'s context "
            f"window of {cfg.n_ctx} positions with any prompt; ask for at most "
            f"{cfg.n_ctx - 1} new tokens."
        )
    width = batch.input_ids.shape[1]
    if not truncate or width + new_tokens <= cfg.n_ctx:
        check_length(cfg, width, new_tokens)
        return batch
    keep = cfg.n_ctx - new_tokens
    warnings.warn(
        f"Prompts of up to {width} tokens truncated to their last {keep} tokens to leave room "
        f"for {new_tokens} new tokens in a context window of {cfg.n_ctx}.",
        UserWarning,
        stacklevel=3,
    )
    # Left padding: every row's real tokens end at the last column, so the last columns hold
    # the end of every prompt.
    return Batch(batch.input_ids[:, -keep:], batch.attention_mask[:, -keep:], None, None)


def continuation(cfg: ModelConfig, batch: Batch, past: Prefix, stop_at_layer: int | None) -> Batch:
    """``batch`` as the continuation of ``past``, one row per prefix row."""
    if batch.input_ids.shape[0] != past.attention_mask.shape[0]:
        raise ConfigError(
            f"past holds {past.attention_mask.shape[0]} prefixes but inputs have "
            f"{batch.input_ids.shape[0]} rows; pass one continuation per prefix."
        )
    shallow = past.depth < cfg.n_layers
    if shallow and (stop_at_layer is None or stop_at_layer >= past.depth):
        raise ConfigError(
            f"past was prefilled up to block {past.depth - 1} only; continue it "
            f"with run_with_cache(..., stop_at_layer=<= {past.depth - 1})."
        )
    return Batch(batch.input_ids, batch.attention_mask, past, batch.segments)


def stop_hook(cfg: ModelConfig, layer: int) -> tuple[str, HookFn]:
    """A hook that ends the forward after block ``layer`` (``stop_at_layer``)."""
    if not 0 <= layer < cfg.n_layers:
        raise ConfigError(
            f"stop_at_layer={layer} is out of range; the model has layers 0..{cfg.n_layers - 1}."
        )
    return names.hook("resid_post", layer), _stop


def _stop(act: Tensor, ctx: HookContext) -> None:
    raise StopForward(ctx.name)
