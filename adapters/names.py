"""Canonical hook and weight names: built, split and checked in one place.

Every model, whatever its family or backend, is addressed with the same TransformerLens-style
names. A *template* uses ``{i}`` for the layer (``blocks.{i}.hook_resid_pre``); a concrete name
has the number (``blocks.3.hook_resid_pre``). Code that needs a name asks this module for it
instead of formatting strings itself:

Example:
    >>> from interv.adapters import names
    >>> names.hook("resid_post", 10)
    'blocks.10.hook_resid_post'
    >>> names.hook("mlp.hook_post", 3), names.hook("z", 0), names.hook("embed")
    ('blocks.3.mlp.hook_post', 'blocks.0.attn.hook_z', 'hook_embed')
    >>> names.weight("mlp.W_out", 4), names.weight("unembed.W_U")
    ('blocks.4.mlp.W_out', 'unembed.W_U')
    >>> names.layer_of("blocks.4.mlp.W_out"), names.layer_of("hook_embed")
    (4, None)

Short hook names follow TransformerLens's ``get_act_name``: ``resid_pre``, ``resid_mid``,
``resid_post``, ``attn_out``, ``mlp_out``, ``z``, ``pre``, ``pre_linear``, ``post``, ``embed``,
``pos_embed``, ``ln1``, ``ln2``, ``ln_final``. Which of these a given model has is
``model.hook_names()``; a name no supported family has fails here, with the closest ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from interv.errors import ConfigError, UnknownNameError

from .architectures import all_architectures

BLOCK = "blocks.{i}."
_LAYER = re.compile(r"^blocks\.(\d+)\.")

# TransformerLens's short activation names -> canonical templates
_SHORT_HOOKS = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "resid_pre": BLOCK + "hook_resid_pre",
    "resid_mid": BLOCK + "hook_resid_mid",
    "resid_post": BLOCK + "hook_resid_post",
    "attn_out": BLOCK + "hook_attn_out",
    "mlp_out": BLOCK + "hook_mlp_out",
    "z": BLOCK + "attn.hook_z",
    "pre": BLOCK + "mlp.hook_pre",
    "pre_linear": BLOCK + "mlp.hook_pre_linear",
    "post": BLOCK + "mlp.hook_post",
    "ln1": BLOCK + "ln1.hook_normalized",
    "ln2": BLOCK + "ln2.hook_normalized",
    "ln_final": "ln_final.hook_normalized",
}


@cache
def hook_templates() -> tuple[str, ...]:
    """Every canonical hook template some supported family has, in no particular order."""
    return tuple(dict.fromkeys(t for arch in all_architectures() for t in arch.hooks))


@cache
def weight_templates() -> tuple[str, ...]:
    """Every canonical weight template some supported family has."""
    found = (t for arch in all_architectures() for t in arch.weights)
    return tuple(dict.fromkeys([*found, "unembed.b_U"]))


def _build(kind: str, name: str, layer: int | None, templates: tuple[str, ...]) -> str:
    template, given = template_of(name)
    if given is not None and layer is not None and given != layer:
        raise ConfigError(f"{name!r} names layer {given}, not layer {layer}; pass one of them.")
    layer = given if given is not None else layer
    candidates = [template] if template in templates else [BLOCK + template]
    for candidate in candidates:
        if candidate not in templates:
            continue
        if candidate.startswith(BLOCK):
            if layer is None:
                raise ConfigError(f"{kind} {name!r} is inside a block: pass its layer.")
            if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
                raise ConfigError(
                    f"The layer of {kind} {name!r} must be an int >= 0, got {layer!r}."
                )
            return candidate.format(i=layer)
        if layer is not None:
            raise ConfigError(f"{kind} {name!r} is not inside a block; it takes no layer.")
        return candidate
    raise UnknownNameError(kind, name, templates, listing="(templates: {i} is the layer)")


def hook(name: str, layer: int | None = None) -> str:
    """The canonical hook name for ``name`` at ``layer``: a short name (``resid_post``), a name
    relative to its block (``mlp.hook_post``), a template or a full name."""
    return _build("hook", _SHORT_HOOKS.get(name, name), layer, hook_templates())


def weight(name: str, layer: int | None = None) -> str:
    """The canonical weight name for ``name`` (``mlp.W_out``, ``unembed.W_U``...) at ``layer``."""
    return _build("weight", name, layer, weight_templates())


def template_of(name: str) -> tuple[str, int | None]:
    """Split ``blocks.3.mlp.hook_post`` into (``blocks.{i}.mlp.hook_post``, 3)."""
    match = _LAYER.match(name)
    if match is None:
        return name, None
    return BLOCK + name[match.end() :], int(match.group(1))


def layer_of(name: str) -> int | None:
    """The block index of a ``blocks.{i}.…`` name (None for names outside the blocks)."""
    return template_of(name)[1]


def in_block(name: str) -> str:
    """The part of a block name after its layer (``blocks.3.mlp.W_out`` -> ``mlp.W_out``)."""
    template, layer = template_of(name)
    if layer is None:
        raise ConfigError(f"{name!r} is not inside a block.")
    return template.removeprefix(BLOCK)


def deepest_layer(hooks: Iterable[str]) -> int | None:
    """The last block a forward must run to reach every hook (None: a hook after the blocks,
    or no hooks, so the whole model must run)."""
    layers = [layer_of(h) for h in hooks]
    if not layers or any(layer is None for layer in layers):
        return None
    return max(layer for layer in layers if layer is not None)


__all__ = [
    "UnknownNameError",
    "deepest_layer",
    "hook",
    "hook_templates",
    "in_block",
    "layer_of",
    "template_of",
    "weight",
    "weight_templates",
]
