"""The data types an architecture table entry is made of.

An entry says, for one model family, where each canonical hook point and each canonical
weight lives in the native ``transformers`` module tree. Backends compile these sites to their
own hooking mechanism; nothing outside ``adapters/`` ever sees a native module path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Port = Literal["in", "out"]


@dataclass(frozen=True)
class Site:
    """Where a hook point reads and writes: the input or output of a native module.

    ``module`` is a native module path template with ``{i}`` for the layer. For ``port="in"``
    the value is the module's first argument; for ``port="out"`` it is its output (the first
    element when the module returns a tuple).

    ``inplace`` writes a new value into the input tensor itself instead of replacing the
    argument. It is needed where the native code keeps a second reference to the same tensor:
    a decoder layer does ``residual = h; h = norm(h)``, so replacing only the norm's argument
    would leave the residual branch unpatched.

    ``heads`` views the last dimension ``n_heads * d_head`` as ``(n_heads, d_head)``.
    """

    module: str
    port: Port
    inplace: bool = False
    heads: bool = False


def out(module: str, *, heads: bool = False) -> Site:
    return Site(module, "out", heads=heads)


def inp(module: str, *, inplace: bool = False, heads: bool = False) -> Site:
    return Site(module, "in", inplace=inplace, heads=heads)


@dataclass(frozen=True)
class WeightSpec:
    """A canonical weight: the native parameter and the layout ops that give the canonical view.

    Layout ops (see ``adapters/layouts.py``) only ever produce views, so the canonical tensor
    shares storage with the live parameter. ``optional`` weights (biases some members of a
    family lack) are left out of ``weight_names()`` when the parameter does not exist.
    ``zeros`` names the dims (``ModelConfig`` fields) of an optional bias that may be created as
    zeros on demand (``HookedModel.ensure_weight``), e.g. so a steering vector can be folded into
    the output bias of a projection that has none.
    """

    param: str
    layout: tuple[str, ...] = ()
    optional: bool = False
    zeros: tuple[str, ...] = ()


def w(param: str, *layout: str, optional: bool = False, zeros: tuple[str, ...] = ()) -> WeightSpec:
    return WeightSpec(param, tuple(layout), optional or bool(zeros), zeros)


ConfigPredicate = Callable[[Any], bool]


@dataclass(frozen=True)
class Architecture:
    """One model family: ``model_type`` values it covers, its hook sites and weights.

    ``hooks`` must be listed in execution order: entries before the first ``blocks.{i}`` entry
    run before the blocks, entries after the last run after them. ``hook_conditions`` keeps a
    hook only when a predicate of the HF config holds (e.g. no ``hook_resid_mid`` for parallel
    attention/MLP blocks). ``tl_names`` maps canonical hook templates to TransformerBridge hook
    names where the bridge's own name means something else.

    ``additive_weights`` maps a hook template to the weight whose value is added, unchanged, to
    that hook's activation at every position: the output bias of the module the hook reads
    (``blocks.{i}.hook_mlp_out`` -> ``blocks.{i}.mlp.b_out``), or the embedding matrix whose
    selected row is the hook's value (``hook_embed`` -> ``embed.W_E``). Constant steering
    vectors at those hooks fold into these weights. Leave a hook out when a norm or a scale
    sits between the weight and the hook.
    """

    name: str
    model_types: tuple[str, ...]
    hooks: Mapping[str, Site]
    weights: Mapping[str, WeightSpec]
    hook_conditions: Mapping[str, ConfigPredicate] = field(default_factory=dict)
    tl_names: Mapping[str, str] = field(default_factory=dict)
    additive_weights: Mapping[str, str] = field(default_factory=dict)
    parallel_attn_mlp: ConfigPredicate = lambda config: False
