"""Compile a graph to ``(hook name, hook function)`` pairs for one model.

Everything that can be checked is checked here, before any forward: hook names, tensor
widths, head indices, the order of conditions, the model the graph was made for (and the SAEs
of its nodes), and every node's tensors once more: nodes keep tensors by reference, so one
changed in place since its node was built, to NaN or to a size the model's dtype cannot
normalise, is refused here (one check per tensor per compile, none per forward). Nodes of
strength 0 and disabled nodes are checked too, though they compile to nothing. The hook
functions are lean: a node at every position without rows, heads or a condition compiles to
its bare ``apply`` (one tensor op for ``Add``); masks are computed once per forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookContext, HookedModel, HookFn, RunState, UnknownNameError, names
from ..errors import GraphError
from .base import Apply, Node
from .conditions import ConditionState
from .selectors import Mask, Positions, head_mask, row_mask
from .tensors import HookInfo, check_number, check_values


class _Hooks:
    """The model's hook points as nodes see them, looked up once per compile."""

    def __init__(self, model: HookedModel):
        self.model = model
        self.dtype = model.dtype
        self.order = {name: i for i, name in enumerate(model.hook_names())}
        self._infos: dict[str, HookInfo] = {}

    def get(self, name: str, who: str = "") -> HookInfo:
        """The hook ``name``; an unknown one is an ``UnknownNameError`` naming ``who`` uses it."""
        if name not in self._infos:
            if name not in self.order:
                raise UnknownNameError("hook", name, self.order, listing=self._listing(name, who))
            self._infos[name] = HookInfo(name, self.model.hook_shape(name), self.order[name])
        return self._infos[name]

    __getitem__ = get

    def _listing(self, name: str, who: str) -> str:
        n_layers = self.model.cfg.n_layers
        layer = names.layer_of(name)
        span = (
            f" Layer {layer} is out of range: the model has layers 0..{n_layers - 1}."
            if layer is not None and layer >= n_layers
            else ""
        )
        used = f" ({who} uses it.)" if who else ""
        return f"See model.hook_names() for all of them.{span}{used}"


def check_nodes(nodes: Sequence[Node], hooks: _Hooks) -> None:
    """Every check of the nodes against the model, whatever their strength and whether they
    are enabled: a node that does not fit the model is wrong even while it does nothing, and
    would fail the day its strength changes."""
    for node in nodes:
        check_number(node.strength, node.describe("strength"))  # fields are assignable too
        node.check_model(hooks.model)
        for hook in node.hooks:
            info = hooks.get(hook, node.describe())
            node.check(info)
            _heads(node, info)
        applied = node.enabled and node.strength != 0
        for what, (tensor, factor) in node.tensors().items():
            check_values(tensor, factor if applied else 0.0, hooks.dtype, node.describe(what))
        condition = node.condition
        if condition is not None:
            condition.check(hooks.get(condition.hook, f"The condition of {node.describe()}"))
            for what, (tensor, factor) in condition.tensors().items():
                check_values(
                    tensor, factor, torch.float32, f"Condition at {condition.hook!r}: {what}"
                )


def compile_nodes(nodes: Sequence[Node], model: HookedModel) -> list[tuple[str, HookFn]]:
    """Hook functions for the enabled nodes (a node of strength 0 is skipped: it is a no-op)."""
    hooks = _Hooks(model)
    check_nodes(nodes, hooks)
    states: dict[int, ConditionState] = {}
    pairs: list[tuple[str, HookFn]] = []
    for node in nodes:
        if not node.enabled or node.strength == 0:
            continue
        positions = node.positions.bind(model.tokenizer)
        state = _condition(node, states)
        selection = _Selection(positions, node.rows, state)
        for hook in node.hooks:
            info = hooks[hook]
            heads = _heads(node, info)
            if (
                state is not None
                and hooks[state.condition.hook].order > info.order
                and not positions.prompt_free
            ):
                raise GraphError(
                    f"{node.describe()} acts on prompt positions at {hook!r}, which runs before "
                    f"its condition's hook {state.condition.hook!r}, so the decision is not known "
                    "there "
                    "yet. Read the condition at an earlier hook, or use positions.generated()."
                )
            pairs.append((hook, _hook_fn(node.program(info), selection, heads)))
    # Conditions read the activation before any node at the same hook changes it.
    return [(s.condition.hook, s.hook) for s in states.values()] + pairs


def _condition(node: Node, states: dict[int, ConditionState]) -> ConditionState | None:
    condition = node.condition
    if condition is None:
        return None
    if id(condition) not in states:
        states[id(condition)] = ConditionState(condition)
    return states[id(condition)]


def _heads(node: Node, info: HookInfo) -> Tensor | None:
    if node.heads is None:
        return None
    if not info.per_head:
        raise GraphError(
            f"{node.describe('heads')}: heads only apply at attn.hook_z, not {info.name!r}."
        )
    n_heads = info.shape[0]
    bad = [h for h in node.heads if h >= n_heads]
    if bad:
        raise GraphError(
            f"{node.describe('heads')}: head index {bad[0]} is out of range; the model has "
            f"{n_heads} heads (0..{n_heads - 1})."
        )
    return head_mask(node.heads, n_heads)


class _Selection:
    """Positions, rows and condition of one node, combined once per forward."""

    def __init__(
        self, positions: Positions, rows: Sequence[int] | None, state: ConditionState | None
    ):
        self.positions, self.rows, self.state = positions, rows, state
        self.trivial = type(positions) is Positions and rows is None and state is None
        self._forward = -1
        self._mask: Mask = None

    def mask(self, run: RunState, act: Float[Tensor, "batch pos *features"]) -> Mask:
        if run.forward_id != self._forward:
            self._mask = self._compute(run, act)
            self._forward = run.forward_id
        return self._mask

    def _compute(self, run: RunState, act: Tensor) -> Mask:
        mask = self.positions.mask(run)
        if mask is False:
            return False
        if self.rows is not None:
            rows = row_mask(self.rows, act.shape[0], act.device)
            mask = rows if mask is None else mask & rows
        if self.state is not None:
            met = self.state.rows().to(act.device)
            mask = met if mask is None else mask & met
        return mask


def _hook_fn(apply: Apply, selection: _Selection, heads: Tensor | None) -> HookFn:
    if selection.trivial and heads is None:
        return apply  # the fast path: no masking at all
    head_cache: dict[torch.device, Tensor] = {}

    def hook(
        act: Float[Tensor, "batch pos *features"], ctx: HookContext
    ) -> Float[Tensor, "batch pos *features"] | None:
        mask = selection.mask(ctx.run, act)
        if mask is False:
            return None
        if mask is not None and mask.device != act.device:  # type: ignore[union-attr]
            mask = mask.to(act.device)  # a model split over devices
        if act.dim() == 4:  # attn.hook_z: [batch, pos, n_heads, d_head]
            mask = None if mask is None else mask[..., None, None]  # type: ignore[index]
            if heads is not None:
                on = head_cache.get(act.device)
                if on is None:
                    on = head_cache[act.device] = heads.to(act.device)
                mask = on if mask is None else mask & on
        elif mask is not None:
            mask = mask.unsqueeze(-1)  # type: ignore[union-attr]
        new = apply(act, ctx)
        return new if mask is None else torch.where(mask, new, act)  # type: ignore[arg-type]

    return hook
