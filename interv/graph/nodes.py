"""Node types: one small class per way of changing an activation.

Every node's effect is scaled by ``strength`` (see ``interv.graph.base``); tensors are kept as
given and cast to the activations' device and dtype on first use.

Example:
    >>> import torch
    >>> from interv.graph import Add, Graph, positions
    >>> vector = torch.randn(576)
    >>> graph = Graph([Add("blocks.10.hook_resid_post", vector, scale=4.0,
    ...                    positions=positions.generated())])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from ..adapters import HookContext
from ..errors import GraphError
from .base import Apply, Node, PutTensor
from .tensors import CastCache, HookInfo, Number, check_number, check_tensor, check_width, unit


@dataclass(eq=False, repr=False)
class Add(Node):
    """Add ``scale * vector`` (a steering vector): ``act + strength * scale * vector``."""

    kind: ClassVar[str] = "add"
    hook: str | Sequence[str]
    vector: Float[Tensor, "*features"]
    scale: Number = 1.0

    def validate(self) -> None:
        check_tensor(self.vector, self.describe("vector"))
        self.scale = check_number(self.scale, self.describe("scale"))

    def check(self, info: HookInfo) -> None:
        check_width(self.vector, info, self.describe("vector"))

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        return {"vector": (self.vector, self.strength * self.scale)}

    def constant_delta(self, info: HookInfo) -> Float[Tensor, "*features"]:
        return self.vector.float() * (self.strength * self.scale)

    def program(self, info: HookInfo) -> Apply:
        delta = CastCache(self.constant_delta(info))
        return lambda act, ctx: act + delta(act)


@dataclass(eq=False, repr=False)
class Scale(Node):
    """Multiply the activation by ``factor``."""

    kind: ClassVar[str] = "scale"
    hook: str | Sequence[str]
    factor: Number

    def validate(self) -> None:
        self.factor = check_number(self.factor, self.describe("factor"))

    def program(self, info: HookInfo) -> Apply:
        factor = 1.0 + self.strength * (self.factor - 1.0)
        return lambda act, ctx: act * factor


@dataclass(eq=False, repr=False)
class Ablate(Node):
    """Zero the activation (``mode="zero"``) or replace it by a ``mean`` activation."""

    kind: ClassVar[str] = "ablate"
    hook: str | Sequence[str]
    mode: Literal["zero", "mean"] = "zero"
    mean: Float[Tensor, "*features"] | None = None

    def validate(self) -> None:
        if self.mode not in ("zero", "mean"):
            raise GraphError(
                f"{self.describe('mode')} must be 'zero' or 'mean', got {self.mode!r}."
            )
        if (self.mode == "mean") != (self.mean is not None):
            raise GraphError(f"{self.describe()}: pass mean=<tensor> exactly when mode='mean'.")
        if self.mean is not None:
            check_tensor(self.mean, self.describe("mean"))

    def check(self, info: HookInfo) -> None:
        if self.mean is not None:
            check_width(self.mean, info, self.describe("mean"))

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        return {} if self.mean is None else {"mean": (self.mean, self.strength)}

    def program(self, info: HookInfo) -> Apply:
        s = self.strength
        if self.mean is None:
            return lambda act, ctx: act * (1.0 - s)
        mean = CastCache(self.mean.float())
        return lambda act, ctx: act + s * (mean(act) - act)


@dataclass(eq=False, repr=False)
class ProjectOut(Node):
    """Remove the component along ``direction`` (per head for ``[n_heads, d_head]``)."""

    kind: ClassVar[str] = "project_out"
    hook: str | Sequence[str]
    direction: Float[Tensor, "*features"]

    def validate(self) -> None:
        unit(check_tensor(self.direction, self.describe("direction")))

    def check(self, info: HookInfo) -> None:
        check_width(self.direction, info, self.describe("direction"))

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        return {"direction": (self.direction, 1.0)}  # its norm must be finite to normalise it

    def program(self, info: HookInfo) -> Apply:
        u, s = CastCache(unit(self.direction)), self.strength

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            d = u(act)
            return act - (s * (act * d).sum(-1, keepdim=True)) * d

        return apply


@dataclass(eq=False, repr=False)
class Clamp(Node):
    """Set the component along the unit ``direction`` to ``value``."""

    kind: ClassVar[str] = "clamp"
    hook: str | Sequence[str]
    direction: Float[Tensor, "*features"]
    value: Number

    def validate(self) -> None:
        unit(check_tensor(self.direction, self.describe("direction")))
        self.value = check_number(self.value, self.describe("value"))

    def check(self, info: HookInfo) -> None:
        check_width(self.direction, info, self.describe("direction"))

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        # The clamped component is written at value * strength along the unit direction.
        value = torch.tensor([self.value], dtype=torch.float64)
        return {"direction": (self.direction, 1.0), "value": (value, self.strength)}

    def program(self, info: HookInfo) -> Apply:
        u, s, value = CastCache(unit(self.direction)), self.strength, self.value

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            d = u(act)
            return act + (s * (value - (act * d).sum(-1, keepdim=True))) * d

        return apply


@dataclass(eq=False, repr=False)
class Replace(Node):
    """Activation patching: replace the activation by ``source``, recorded on another run.

    ``source`` is ``[batch or 1, pos, *features]`` (or ``[pos, *features]``), indexed by
    position in the padded sequence of the run it is patched into, or a mapping
    ``hook -> tensor`` such as an ``ActivationCache`` when the node spans several hooks.
    Positions the source does not cover (e.g. generated tokens) are left alone.
    """

    kind: ClassVar[str] = "replace"
    hook: str | Sequence[str]
    source: Tensor | Mapping[str, Tensor]

    def validate(self) -> None:
        if isinstance(self.source, Tensor):
            if len(self.hooks) != 1:
                raise GraphError(
                    f"{self.describe('source')}: pass a mapping hook -> tensor for several hooks."
                )
            self.source = {self.hooks[0]: self.source}
        missing = [h for h in self.hooks if h not in self.source]
        if missing:
            raise GraphError(f"{self.describe('source')} has no activation for {missing}.")
        sources = {}
        for hook in self.hooks:
            tensor = check_tensor(self.source[hook], self.describe(f"source[{hook!r}]"))
            sources[hook] = tensor
        self.source = sources

    def check(self, info: HookInfo) -> None:
        tensor = self.source[info.name]  # type: ignore[index]
        features = len(info.shape)
        if (
            tensor.dim() not in (features + 1, features + 2)
            or tuple(tensor.shape[-features:]) != info.shape
        ):
            raise GraphError(
                f"{self.describe('source')} has shape {list(tensor.shape)}; activations at "
                f"{info.name!r} are [batch, pos, {', '.join(map(str, info.shape))}]."
            )

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        sources: dict[str, Tensor] = self.source  # type: ignore[assignment]
        return {f"source[{h!r}]": (t, self.strength) for h, t in sources.items()}

    def program(self, info: HookInfo) -> Apply:
        tensor = self.source[info.name]  # type: ignore[index]
        source = CastCache(tensor if tensor.dim() == len(info.shape) + 2 else tensor.unsqueeze(0))
        s, describe = self.strength, self.describe

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            src = source(act)
            start = ctx.run.past_length
            n = min(act.shape[1], src.shape[1] - start)
            if n <= 0:
                return act
            if src.shape[0] not in (1, act.shape[0]):
                raise GraphError(
                    f"{describe('source')} has {src.shape[0]} rows; the batch has {act.shape[0]}."
                )
            part = src[:, start : start + n].expand_as(act[:, :n])
            head = part.clone() if s == 1.0 else act[:, :n] + s * (part - act[:, :n])
            return head if n == act.shape[1] else torch.cat([head, act[:, n:]], dim=1)

        return apply


@dataclass(eq=False, repr=False)
class Transform(Node):
    """A linear map of the last feature dim: ``act @ matrix + bias`` (LM-Steer style).

    With ``residual=True`` the map is added to the activation, ``act + act @ matrix + bias``,
    so a small learned matrix steers and ``strength`` scales it.
    """

    kind: ClassVar[str] = "transform"
    hook: str | Sequence[str]
    matrix: Float[Tensor, "d_in d_out"]
    bias: Float[Tensor, " d_out"] | None = None
    residual: bool = False

    def validate(self) -> None:
        check_tensor(self.matrix, self.describe("matrix"))
        if self.bias is not None:
            check_tensor(self.bias, self.describe("bias"))

    def check(self, info: HookInfo) -> None:
        check_width(self.matrix, info, self.describe("matrix"), square=True)
        if self.bias is not None and tuple(self.bias.shape) != info.shape[-1:]:
            raise GraphError(
                f"{self.describe('bias')} has shape {list(self.bias.shape)}, "
                f"expected {list(info.shape[-1:])}."
            )

    def tensors(self) -> dict[str, tuple[Shaped[Tensor, "..."], float]]:
        found = {"matrix": (self.matrix, 1.0)}  # a row's norm bounds what one feature maps to
        if self.bias is not None:
            found["bias"] = (self.bias, self.strength)
        return found

    def program(self, info: HookInfo) -> Apply:
        matrix = CastCache(self.matrix.float())
        bias = CastCache(self.bias.float()) if self.bias is not None else None
        s, residual = self.strength, self.residual

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            mapped = act @ matrix(act)
            if bias is not None:
                mapped = mapped + bias(act)
            if residual:
                return act + s * mapped
            return mapped if s == 1.0 else act + s * (mapped - act)

        return apply


@dataclass(eq=False, repr=False)
class Function(Node):
    """The escape hatch: any Python function ``fn(act, ctx) -> new act | None``.

    It sees the activation at every position (selectors and conditions mask its result) and
    the hook context (``ctx.run`` says which positions this forward covers). A graph holding
    a ``Function`` runs everywhere but cannot be saved: graph files never store code.
    """

    kind: ClassVar[str] = "function"
    hook: str | Sequence[str]
    fn: Callable[[Tensor, HookContext], Tensor | None]

    def validate(self) -> None:
        if not callable(self.fn):
            raise GraphError(f"{self.describe('fn')} must be callable.")

    def program(self, info: HookInfo) -> Apply:
        fn, s = self.fn, self.strength

        def apply(
            act: Float[Tensor, "batch pos *features"], ctx: HookContext
        ) -> Float[Tensor, "batch pos *features"]:
            new = fn(act, ctx)
            if new is None:
                return act
            return new if s == 1.0 else act + s * (new - act)

        return apply

    def yaml_fields(self, put: PutTensor) -> dict[str, Any]:
        raise GraphError(
            f"{self.describe()} holds Python code, which graph files never store; replace it "
            "with a typed node, or save graph.without(name)."
        )
