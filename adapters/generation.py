"""A ``transformers.GenerationConfig`` from interv's generation arguments, validated."""

from __future__ import annotations

from typing import Any

from transformers import GenerationConfig

from interv.errors import ConfigError


def generation_config(
    tokenizer: Any,
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float,
    top_k: int | None,
    extra: dict[str, Any],
) -> GenerationConfig:
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    known = set(GenerationConfig().to_dict())
    unknown = sorted(set(extra) - known)
    if unknown:
        raise ConfigError(
            f"Unknown generation parameter(s) {', '.join(unknown)}; pass fields of "
            "transformers.GenerationConfig (e.g. repetition_penalty, num_beams)."
        )
    fields: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": do_sample,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if do_sample:
        fields.update(temperature=temperature, top_p=top_p, top_k=top_k)
    else:
        # Explicit neutral values keep a checkpoint's sampling defaults from leaking in.
        fields.update(temperature=None, top_p=None, top_k=None)
    fields.update(extra)
    return GenerationConfig(**fields)
