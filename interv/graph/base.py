"""The node base class: where a node acts, when, and how strongly.

Every node acts at one or more hook points (``hook``, or a ``{i}`` template with ``layers``),
on selected ``positions``, batch ``rows`` and, at ``attn.hook_z``, ``heads``; optionally only
where a ``condition`` holds. ``strength`` scales the node's effect: the new activation is
``act + strength * (full_effect(act) - act)``, so ``0`` is a no-op, ``1`` the node as written,
``0.5`` half of it. For ``Add`` that is ``act + strength * scale * vector``. ``graph * k``
multiplies every node's strength by ``k``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from jaxtyping import Float, Shaped
from torch import Tensor

from ..adapters import HookContext, HookedModel
from ..errors import GraphError
from .conditions import Condition
from .selectors import Positions
from .tensors import HookInfo, Number, check_number

# A compiled node: the new activation at every position, strength already applied.
Apply = Callable[
    [Float[Tensor, "batch pos *features"], HookContext], Float[Tensor, "batch pos *features"]
]
# field -> tensor reference in graph.yaml
PutTensor = Callable[[str, Shaped[Tensor, " ..."]], dict[str, Any]]
GetTensor = Callable[[dict[str, Any]], Shaped[Tensor, " ..."]]  # tensor reference -> tensor
SAEResolver = Callable[[str], Any]  # sae id -> SAE object

COMMON_FIELDS = ("name", "layers", "positions", "rows", "heads", "condition", "enabled", "strength")


@dataclass(eq=False, repr=False, kw_only=True)
class Node(ABC):
    """Base class of every node type; subclasses declare ``hook`` and their own fields first."""

    kind: ClassVar[str] = ""
    if TYPE_CHECKING:
        hook: str | Sequence[str]

    name: str = ""
    layers: Sequence[int] | None = None
    positions: Positions = field(default_factory=Positions)
    rows: Sequence[int] | None = None
    heads: Sequence[int] | None = None
    condition: Condition | None = None
    enabled: bool = True
    strength: Number = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.hook, str):
            self.hook = tuple(self.hook)
        self.layers = _ints(self.layers, "layers", self)
        self.rows = _ints(self.rows, "rows", self)
        self.heads = _ints(self.heads, "heads", self)
        self.hooks: tuple[str, ...] = _expand(self.hook, self.layers, self)
        self.strength = check_number(self.strength, self.describe("strength"))
        if not isinstance(self.positions, Positions):
            raise GraphError(f"{self.describe('positions')} must come from interv.graph.positions.")
        self.validate()

    # ------------------------------------------------------------------ per node type
    def validate(self) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """Check the node's own fields at construction (finite tensors, valid modes)."""

    def check(self, info: HookInfo) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """Check the node's tensors against a hook of the model it is compiled for."""

    def check_model(self, model: HookedModel) -> None:  # noqa: B027 - an optional hook, a no-op unless overridden
        """Check what the node holds that belongs to a model (an SAE's record) against it."""

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        """Each tensor field (``source.<hook>`` for mappings) with the factor the node writes it
        into the activation at (0: it is not written, e.g. a direction only projected on).
        Compiling re-checks them (``check_values``): tensors are kept by reference."""
        found: dict[str, tuple[Tensor, float]] = {}
        for name in self.own_fields():
            value = getattr(self, name)
            if isinstance(value, Tensor):
                found[name] = (value, 0.0)
            elif isinstance(value, dict):
                tensors = {k: v for k, v in value.items() if isinstance(v, Tensor)}
                found.update({f"{name}[{k!r}]": (v, 0.0) for k, v in tensors.items()})
        return found

    @abstractmethod
    def program(self, info: HookInfo) -> Apply:
        """The compiled node for one hook: the new activation at every position."""

    def constant_delta(self, info: HookInfo) -> Float[Tensor, "*features"] | None:
        """For nodes that add the same vector everywhere: that vector (float32), else None."""
        return None

    # -------------------------------------------------------------------------- helpers
    def describe(self, what: str = "") -> str:
        label = f"{self.kind} node {self.name!r}" if self.name else f"{self.kind} node"
        hooks = getattr(self, "hooks", None) or (self.hook,)
        where = f" at {hooks[0]!r}" + (f" (+{len(hooks) - 1} more)" if len(hooks) > 1 else "")
        return f"{label}{where}" + (f": {what}" if what else "")

    def replace(self, **changes: Any) -> Node:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def scaled(self, factor: Number) -> Node:
        return self.replace(strength=self.strength * check_number(factor, "scale factor"))

    def own_fields(self) -> list[str]:
        """The node type's own fields, in declaration order, ``hook`` first."""
        names = [f.name for f in dataclasses.fields(self) if f.init and f.name not in COMMON_FIELDS]
        return ["hook", *[n for n in names if n != "hook"]]

    # ----------------------------------------------------------------------- graph.yaml
    def yaml_fields(self, put: PutTensor) -> dict[str, Any]:
        """The node type's own fields for graph.yaml (``put`` stores a tensor, returns its ref)."""
        return {name: _to_yaml(getattr(self, name), name, put) for name in self.own_fields()}

    @classmethod
    def fields_from_yaml(
        cls, spec: dict[str, Any], get: GetTensor, saes: SAEResolver
    ) -> dict[str, Any]:
        """Constructor arguments from graph.yaml fields (inverse of ``yaml_fields``)."""
        return {name: _from_yaml(value, get) for name, value in spec.items()}

    def __repr__(self) -> str:
        parts = [f"{k}={_short(getattr(self, k))}" for k in self.own_fields()]
        parts += [f"{k}={_short(getattr(self, k))}" for k in COMMON_FIELDS if _non_default(self, k)]
        return f"{type(self).__name__}({', '.join(parts)})"


def _ints(values: Sequence[int] | None, what: str, node: Node) -> tuple[int, ...] | None:
    if values is None:
        return None
    items = tuple(values)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in items):
        raise GraphError(
            f"{node.describe(what)} must be a non-empty list of ints >= 0, got {values!r}."
        )
    if len(set(items)) != len(items):
        raise GraphError(f"{node.describe(what)} lists an index twice: {list(items)}.")
    return items


def _expand(
    hook: str | Sequence[str], layers: tuple[int, ...] | None, node: Node
) -> tuple[str, ...]:
    names = [hook] if isinstance(hook, str) else list(hook)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise GraphError(
            f"{node.kind} node: hook must be a hook name or a list of them, got {hook!r}."
        )
    templated = [n for n in names if "{i}" in n]
    if layers is None and templated:
        raise GraphError(f"{node.kind} node: hook {templated[0]!r} has '{{i}}'; pass layers=[...].")
    if layers is not None and len(templated) != len(names):
        raise GraphError(
            f"{node.kind} node: layers= needs hook templates with '{{i}}', got {hook!r}."
        )
    expanded = [n.format(i=i) for n in names for i in layers] if layers is not None else names
    if len(set(expanded)) != len(expanded):
        raise GraphError(f"{node.kind} node: hook {hook!r} names the same hook point twice.")
    return tuple(expanded)


def is_tensor_ref(value: Any) -> bool:
    return isinstance(value, dict) and "tensor" in value


def _to_yaml(value: Any, name: str, put: PutTensor) -> Any:
    if isinstance(value, Tensor):
        return put(name, value)
    if isinstance(value, dict) and value and all(isinstance(v, Tensor) for v in value.values()):
        return {key: put(f"{name}.{key}", tensor) for key, tensor in value.items()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _from_yaml(value: Any, get: GetTensor) -> Any:
    if is_tensor_ref(value):
        return get(value)
    if isinstance(value, dict) and value and all(is_tensor_ref(v) for v in value.values()):
        return {key: get(ref) for key, ref in value.items()}
    return value


def _short(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"Tensor{list(value.shape)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Positions):
        return repr(value.to_yaml())
    if isinstance(value, Condition):
        return f"{type(value).__name__}({value.hook!r})"
    return repr(value)


def _non_default(node: Node, name: str) -> bool:
    spec = next(f for f in dataclasses.fields(node) if f.name == name)
    default = (
        spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    )
    return getattr(node, name) != default
