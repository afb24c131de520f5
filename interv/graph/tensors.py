"""What every node shares about tensors: validation, widths per hook, device/dtype casting."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..errors import GraphError

Number = float | int


@dataclass(frozen=True)
class HookInfo:
    """A hook point of one model as a node sees it at compile time."""

    name: str
    shape: tuple[int, ...]  # feature dims after [batch, pos]: (d_model,), (n_heads, d_head)...
    order: int  # rank in execution order

    @property
    def per_head(self) -> bool:
        return len(self.shape) == 2


def check_tensor(value: object, what: str) -> Float[Tensor, " ..."]:
    """A floating-point tensor without NaN or inf, or one clear error naming ``what``."""
    if not isinstance(value, Tensor):
        raise GraphError(f"{what} must be a torch tensor, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise GraphError(f"{what} must be a floating-point tensor, got dtype {value.dtype}.")
    if not bool(torch.isfinite(value).all()):
        raise GraphError(f"{what} contains NaN or inf values; check how it was computed.")
    return value


def check_values(
    tensor: Float[Tensor, " ..."], factor: float, dtype: torch.dtype, what: str
) -> None:
    """At compile: ``tensor`` is still finite and ``factor * tensor`` fits a model computing in
    ``dtype``, or one ``GraphError`` naming ``what``, the norm and the dtype.

    Nodes keep their tensors by reference, so a tensor changed in place after its node was
    built is only caught here. ``factor`` is what the node scales the tensor by when it writes
    it into the activation (0: it is not applied, only its finiteness matters). Every value
    must fit ``dtype``, and the squared norm of each row must stay finite in the precision
    norms sum it in (float32 at least: RMSNorm and LayerNorm upcast), or the next norm divides by
    an infinite norm (NaN or zeros) and generation silently yields nothing.
    """
    values = tensor.detach()
    if values.numel() == 0:
        return
    if values.device.type == "mps":  # no float64 on MPS
        values = values.cpu()
    values = values.double()
    rows = values.reshape(-1, values.shape[-1]) if values.dim() else values.reshape(1, 1)
    peak, norm = torch.stack([values.abs().amax(), rows.norm(dim=-1).amax()]).tolist()  # 1 sync
    if not (math.isfinite(peak) and math.isfinite(norm)):
        raise GraphError(
            f"{what} contains NaN or inf values; check how it was computed (or what changed it "
            "after the node was built)."
        )
    if not math.isfinite(factor):  # a scale or strength assigned after the node was built
        raise GraphError(f"{what} is scaled by {factor!r}; scale and strength must be finite.")
    if factor == 0:
        return
    summed = torch.promote_types(dtype, torch.float32)
    peak, norm = peak * abs(factor), norm * abs(factor)
    # compared as norm > sqrt(max): squaring a Python float can raise OverflowError
    if peak > torch.finfo(dtype).max or norm > math.sqrt(torch.finfo(summed).max):
        raise GraphError(
            f"{what} times {factor:g} has norm {norm:.3g} (largest value {peak:.3g}), too large "
            f"for a model computing in {_name(dtype)}: its square overflows {_name(summed)} "
            f"(max {torch.finfo(summed).max:.3g}), so the next norm divides by infinity and the "
            "output is lost (NaN or empty text). Use a smaller scale or strength, or a "
            "normalised vector."
        )


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def is_finite_number(value: object) -> bool:
    """An int or float (not a bool) that is neither NaN nor infinite."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_number(value: Number, what: str) -> float:
    if not is_finite_number(value):
        raise GraphError(f"{what} must be a finite number, got {value!r}.")
    return float(value)


def check_width(
    tensor: Float[Tensor, " ..."], info: HookInfo, what: str, *, square: bool = False
) -> None:
    """``tensor`` fits the hook's features: full shape, or one head's ``d_head`` at ``attn.hook_z``.

    With ``square`` the tensor is a matrix mapping the last feature dim to itself.
    """
    width = info.shape[-1]
    if square:
        if tuple(tensor.shape) == (width, width):
            return
        expected = f"[{width}, {width}]"
    else:
        allowed = {info.shape, info.shape[-1:]}
        if tuple(tensor.shape) in allowed:
            return
        expected = " or ".join(str(list(s)) for s in sorted(allowed, key=len))
    raise GraphError(
        f"{what} has shape {list(tensor.shape)}, but activations at {info.name!r} have features "
        f"{list(info.shape)}; it must be {expected}. Was it computed at another hook or for "
        "another model?"
    )


class CastCache:
    """A tensor on the device and dtype of the activations it meets, converted once per pair."""

    __slots__ = ("_cache", "tensor")

    def __init__(self, tensor: Float[Tensor, " ..."]):
        self.tensor = tensor
        self._cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def __call__(self, like: Float[Tensor, " ..."]) -> Float[Tensor, " ..."]:
        key = (like.device, like.dtype)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self.tensor.to(device=like.device, dtype=like.dtype)
        return cached


def unit(direction: Float[Tensor, "*features"]) -> Float[Tensor, "*features"]:
    """``direction`` scaled to unit norm along its last dim (per head for ``[n_heads, d_head]``)."""
    norm = direction.float().norm(dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise GraphError("A direction has zero norm; it does not define a direction.")
    return direction.float() / norm
