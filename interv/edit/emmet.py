"""EMMET: Equality-constrained Mass Model Editing (Gupta et al., 2024, https://arxiv.org/abs/2403.14236).

EMMET is batched ROME. ROME writes one fact as an equality constraint (the edited key must map
exactly to its new value) while preserving other keys; MEMIT relaxes the constraint to a least
squares term. EMMET keeps the equality for a whole batch: with ``C' = λ·C + update_norm_lambda·I``
and the keys' Gram matrix ``D = K C'⁻¹ Kᵀ + emmet_lambda·I`` (the ridge keeps ``D`` invertible
when keys are nearly collinear), the update is ``ΔW = C'⁻¹ Kᵀ D⁻¹ R``. Targets, layers and the
residual spread follow MEMIT.

Example:
    >>> from interv.edit.emmet import EMMET
    >>> patch = EMMET().compute(model, requests)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError
from ..linalg import emmet_update
from .base import EDIT_METHODS
from .locate import LocateHParams, MultiLayerMethod


@dataclass(kw_only=True)
class EMMETHParams(LocateHParams):
    method = "emmet"

    layers: list[int] | str = field(default_factory=lambda: [3, 4, 5, 6, 7])
    mom2_update_weight: float = 1.0
    update_norm_lambda: float = 0.0
    emmet_lambda: float = 0.1
    batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mom2_update_weight <= 0:
            raise ConfigError(
                f"mom2_update_weight must be positive, got {self.mom2_update_weight}."
            )
        for name in ("update_norm_lambda", "emmet_lambda"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}.")


@EDIT_METHODS.register("emmet")
class EMMET(MultiLayerMethod):
    """Batched equality-constrained edit of ``blocks.{L}.mlp.W_out`` for L in ``layers``."""

    name = "emmet"
    hparams_class = EMMETHParams
    hparams: EMMETHParams

    def solve(
        self,
        model: HookedModel,
        index: int,
        layer: int,
        K: Float[Tensor, "n d_mlp"],
        R: Float[Tensor, "n d_model"],
    ) -> tuple[Float[Tensor, "d_mlp rank"], Float[Tensor, "d_model rank"]]:
        hp = self.hparams
        C = self.second_moment(model, [layer])[layer]
        return emmet_update(K, R, C, hp.mom2_update_weight, hp.update_norm_lambda, hp.emmet_lambda)
