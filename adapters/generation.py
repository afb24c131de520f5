"""A ``transformers.GenerationConfig`` from interv's generation arguments, validated.

``check_generation_args`` checks ``HookedModel.generate``'s sampling arguments (the types
Python will not check: ``max_new_tokens="5"`` or ``2.5``, a NaN temperature, ``top_k=0``);
``generation_config`` runs it before building the config, and the steering workflow runs
``check_generation_params`` on its ``generation_params`` mapping when the config is read.
Every refusal is one ``ConfigError`` naming the parameter, the value and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from transformers import GenerationConfig

from interv.errors import ConfigError, UnknownKeyError

SAMPLING = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k")
# what a caller of HookedModel.generate passes beside the sampling arguments: never a
# generation setting of a config (the workflow passes them itself)
NOT_GENERATION = ("seed", "chat_template", "system_prompt", "hooks", "graph", "prompts")
SEED_RANGE = (-(2**63), 2**64)  # what torch.manual_seed accepts


def generation_config(
    tokenizer: Any,
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    extra: dict[str, Any],
    seed: int | None = None,
) -> GenerationConfig:
    """The config ``HookedModel.generate`` runs with; ``seed`` is checked here with the rest
    (the caller seeds)."""
    check_generation_args(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=seed,
    )
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
    try:
        return GenerationConfig(**fields)
    except (TypeError, ValueError) as err:  # transformers' own checks of the extra fields
        raise ConfigError(f"Invalid generation parameters: {err}") from None


def check_generation_args(
    *,
    max_new_tokens: Any,
    do_sample: Any,
    temperature: Any,
    top_p: Any,
    top_k: Any,
    seed: Any = None,
) -> None:
    """Refuse sampling arguments of the wrong type or range, naming the parameter.

    ``temperature`` must be > 0 only when sampling (greedy decoding ignores it, and
    ``temperature=0`` is a common way of asking for it); its type is checked either way.

    Example:
        >>> check_generation_args(max_new_tokens=2.5, do_sample=False, temperature=1.0,
        ...                       top_p=1.0, top_k=None)  # doctest: +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        interv.errors.ConfigError: max_new_tokens must be an int >= 1, got 2.5 (float); write a
        whole number of tokens such as 40.
    """
    _whole("max_new_tokens", max_new_tokens, 1, "write a whole number of tokens such as 40")
    if not isinstance(do_sample, bool):
        raise ConfigError(
            f"do_sample must be True or False, got {_got(do_sample)}; pass a bool "
            "(YAML: true or false, unquoted)."
        )
    _number("temperature", temperature, "> 0", lambda t: t > 0 or not do_sample)
    _number("top_p", top_p, "in (0, 1]", lambda p: 0 < p <= 1)
    if top_k is not None:
        _whole("top_k", top_k, 1, "write a whole number such as 50, or None for no top-k filter")
    if seed is not None:
        _whole("seed", seed, SEED_RANGE[0], "write a whole number such as 0, or None")
        if seed >= SEED_RANGE[1]:
            raise ConfigError(f"seed must be below 2**64, got {seed}; use a smaller seed.")


def check_generation_params(params: Mapping[str, Any], where: str = "generation_params") -> None:
    """A config's generation settings (the workflow's ``generation_params``): sampling arguments
    of ``HookedModel.generate`` (checked as there, before any model is loaded) and
    ``transformers.GenerationConfig`` fields; anything else is an unknown key."""
    if not isinstance(params, Mapping):
        raise ConfigError(
            f"{where} must be a mapping of generation settings, got {_got(params)}; write "
            "e.g. {max_new_tokens: 30, do_sample: false}."
        )
    for key in params:
        if key in NOT_GENERATION:
            raise ConfigError(
                f"{where}.{key} is not a generation setting; set it where the config has it "
                "(the top-level `seed`, `use_chat_template`, `system_prompt`)."
            )
    settings = (k for k in GenerationConfig().to_dict() if not k.startswith("_"))
    valid = set(SAMPLING) | set(settings) - {"transformers_version"}
    unknown = sorted(str(k) for k in params if k not in valid)
    if unknown:
        raise UnknownKeyError(where, unknown[0], valid)
    defaults = {"max_new_tokens": 40, "do_sample": False, "temperature": 1.0, "top_p": 1.0}
    given = {k: params[k] for k in SAMPLING if k in params}
    try:
        check_generation_args(**{**defaults, "top_k": None, **given})
    except ConfigError as err:
        raise ConfigError(f"{where}.{err}") from None


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _whole(name: str, value: Any, minimum: int, fix: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        low = f" >= {minimum}" if minimum > SEED_RANGE[0] else ""
        raise ConfigError(f"{name} must be an int{low}, got {_got(value)}; {fix}.")


def _number(name: str, value: Any, wanted: str, ok: Any) -> None:
    """``value`` is None, or a finite number for which ``ok(value)`` holds."""
    if value is None:
        return
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"{name} must be a number {wanted}, got {_got(value)}.")
    if not math.isfinite(value) or not ok(value):
        raise ConfigError(
            f"{name} must be a finite number {wanted}, got {_got(value)}; e.g. 1.0 (or None)."
        )
