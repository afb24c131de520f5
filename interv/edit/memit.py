"""MEMIT: Mass-Editing Memory in a Transformer (Meng et al., 2023, https://arxiv.org/abs/2210.07229).

MEMIT writes many facts at once and spreads each across several MLP layers. For every request it
optimises the residual stream ``z`` at the subject's last token after the last edited layer so
that the model says the new target (as ROME does for one MLP output). Then, layer by layer from
the first, it solves the least-squares problem that moves each request's key toward its share of
the remaining residual while preserving the layer's other keys, weighted by their second moment:
``ΔW = (λ·C + KᵀK)⁻¹ Kᵀ R`` with ``λ = mom2_update_weight``. Each solved layer is applied
(temporarily) before the next layer's keys are read, so later layers correct what earlier ones
did not achieve.

The update changes every other key's output in proportion to the values, so their size sets
the batch's locality: ``z`` is clamped at 0.75 times the residual's norm (MEMIT's own setting,
tighter than ROME's 4x; docs/results.md compares the two). AlphaEdit and EMMET share the value
and the setting.

Example:
    >>> from interv.edit.memit import MEMIT, MEMITHParams
    >>> method = MEMIT(MEMITHParams(layers=[3, 4, 5, 6, 7]))
    >>> patch = method.compute(model, requests)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError
from ..linalg import memit_update
from .base import EDIT_METHODS
from .locate import LocateHParams, MultiLayerMethod


@dataclass(kw_only=True)
class MEMITHParams(LocateHParams):
    method = "memit"

    layers: list[int] | str = field(default_factory=lambda: [3, 4, 5, 6, 7])
    mom2_update_weight: float = 1500.0
    batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mom2_update_weight <= 0:
            raise ConfigError(
                f"mom2_update_weight must be positive, got {self.mom2_update_weight}."
            )
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}.")


@EDIT_METHODS.register("memit")
class MEMIT(MultiLayerMethod):
    """Batched multi-layer least-squares edit of ``blocks.{L}.mlp.W_out`` for L in ``layers``."""

    name = "memit"
    hparams_class = MEMITHParams
    hparams: MEMITHParams

    def solve(
        self,
        model: HookedModel,
        index: int,
        layer: int,
        K: Float[Tensor, "n d_mlp"],
        R: Float[Tensor, "n d_model"],
    ) -> tuple[Float[Tensor, "d_mlp rank"], Float[Tensor, "d_model rank"]]:
        C = self.second_moment(model, [layer])[layer]
        return memit_update(K, R, C, self.hparams.mom2_update_weight)
