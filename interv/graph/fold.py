"""Fold a graph of constant additions into the weights: steering at zero run-time cost.

Adding a constant vector ``v`` at every position of a residual-stream hook is the same as
adding ``v`` to the bias of the module that writes that stream. The residual stream is one
stream seen at several hooks, so hooks are first reduced to the write they follow:

* ``blocks.{i}.hook_resid_post`` -> ``blocks.{i}.hook_mlp_out`` (the block's last write),
* ``blocks.{i}.hook_resid_pre`` -> ``blocks.{i-1}.hook_resid_post``; for ``i = 0``, ``hook_embed``,
* ``blocks.{i}.hook_resid_mid`` -> ``blocks.{i}.hook_attn_out``,

then the architecture table's ``additive_weights`` names the weight (``mlp.b_out``, ``attn.b_O``,
rows of ``embed.W_E``). Llama-style models have no such biases; the patch creates them as zeros
and removes them again on revert. Anything else (other hooks, positions other than all, rows,
heads, conditions, non-constant nodes, an embedding tied to the unembedding) is refused with
the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..adapters import HookedModel, architecture_for, names
from ..errors import GraphError
from ..patch import PatchSet, WeightPatch
from ..record import ModelRecord
from .base import Node
from .compile import _Hooks, check_nodes
from .selectors import Positions

# a residual-stream hook -> the block's write it follows
_LAST_WRITE = {"hook_resid_post": "hook_mlp_out", "hook_resid_mid": "hook_attn_out"}


def fold_nodes(nodes: Sequence[Node], model: HookedModel, provenance: dict[str, Any]) -> PatchSet:
    """A ``PatchSet`` with the same effect as the nodes' hooks (see the module docstring);
    ``provenance`` becomes its hyperparameters."""
    hooks = _Hooks(model)
    check_nodes(nodes, hooks)
    deltas: dict[str, Tensor] = {}
    for node in nodes:
        if not node.enabled or node.strength == 0:
            continue
        reason = _not_constant(node)
        for hook in node.hooks:
            info = hooks[hook]
            delta = None if reason else node.constant_delta(info)
            if delta is None:
                raise GraphError(
                    f"Cannot fold {node.describe()}: "
                    f"{reason or 'only constant additions (Add, SAEFeature add) fold'}. "
                    "Run it as hooks instead (model.intervene(graph))."
                )
            weight = fold_target(model, hook)
            deltas[weight] = deltas[weight] + delta if weight in deltas else delta
    patches = [_patch(model, weight, delta) for weight, delta in deltas.items()]
    return PatchSet(
        patches,
        method="graph.fold",
        hparams=provenance,
        model=ModelRecord.of(model),
    )


def fold_target(model: HookedModel, hook: str) -> str:
    """The weight whose value adds unchanged to ``hook``'s activation at every position."""
    arch = architecture_for(model.cfg.model_type)
    stream, layer = hook, names.layer_of(hook)
    inside = names.in_block(hook) if layer is not None else ""
    if inside == "hook_resid_pre":
        stream = names.hook("embed") if layer == 0 else names.hook("resid_post", layer - 1)
        layer = names.layer_of(stream)
        inside = names.in_block(stream) if layer is not None else ""
    if inside in _LAST_WRITE:
        stream = names.hook(_LAST_WRITE[inside], layer)
    template = names.template_of(stream)[0]
    entry = arch.additive_weights.get(template)
    via = f" (its last write is {stream!r})" if stream != hook else ""
    if entry is None:
        raise GraphError(
            f"Cannot fold an addition at {hook!r}{via}: no weight of a {arch.name} model adds a "
            "constant to it (a norm, a scale or a non-linearity sits in between). Keep it as hooks."
        )
    weight = entry if layer is None else entry.format(i=layer)
    if weight == "embed.W_E" and model.cfg.tied_embeddings:
        raise GraphError(
            f"Cannot fold an addition at {hook!r}{via} into embed.W_E: this model ties it to the "
            "unembedding, so the logits would change too. Fold at a later layer or keep it "
            "as hooks."
        )
    return weight


def _not_constant(node: Node) -> str:
    if type(node.positions) is not Positions:
        where = node.positions.to_yaml()
        return f"it acts on positions {where!r}, but a weight acts on every position"
    if node.rows is not None:
        return "it selects batch rows"
    if node.heads is not None:
        return "it selects attention heads"
    if node.condition is not None:
        return "it is conditional, and a weight cannot decide per prompt"
    return ""


def _patch(model: HookedModel, weight: str, delta: Tensor) -> WeightPatch:
    shape = model.weight_shape(weight)
    if len(shape) == 1:
        return WeightPatch(weight, delta=delta)
    # Every row of an embedding matrix: rank one, ones x delta, never a dense [d_vocab, d_model].
    return WeightPatch(weight, U=torch.ones(shape[0], 1), V=delta.reshape(-1, 1))
