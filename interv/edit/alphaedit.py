"""AlphaEdit: null-space constrained knowledge editing (Fang et al., ICLR 2025,
https://arxiv.org/abs/2410.02355).

AlphaEdit is MEMIT with the update projected onto the (approximate) null space of the keys the
model must keep answering the same way. The projector ``P`` spans the eigen-directions of the
keys' second moment ``C`` whose eigenvalues are below ``nullspace_threshold``; an update of the
form ``P X`` barely changes the output for ordinary keys, so the preservation term drops out and
the solve becomes ``ΔW = (P (KᵀK + K_pᵀK_p) + L2·I)⁻¹ P Kᵀ R``, where ``K_p`` are the keys of
earlier edits made with this method instance (sequential editing keeps them intact). ``P`` is
computed once per layer and cached on disk next to the statistics.

The instance accumulates the keys of every ``compute`` call, assuming its patch is applied; use
one instance per editing session and ``reset()`` to start over. For long sequential runs,
``recipes/edit/alphaedit-sequential-smollm2.yaml`` clamps the values lower (0.4x), since each
step's damage to other prompts adds up.

Example:
    >>> from interv.edit.alphaedit import AlphaEdit
    >>> editor = AlphaEdit()
    >>> for batch in batches:  # doctest: +SKIP
    ...     editor.compute(model, batch).apply(model)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..errors import ConfigError
from ..linalg import projected_update
from ..stats import StatsCache, null_space
from .base import EDIT_METHODS
from .locate import LocateHParams, MultiLayerMethod, ValueCache


@dataclass(kw_only=True)
class AlphaEditHParams(LocateHParams):
    method = "alphaedit"

    layers: list[int] | str = field(default_factory=lambda: [3, 4, 5, 6, 7])
    nullspace_threshold: float = 2e-2
    L2: float = 10.0
    batch_size: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nullspace_threshold <= 0:
            raise ConfigError(
                f"nullspace_threshold must be positive, got {self.nullspace_threshold}."
            )
        if self.L2 < 0:
            raise ConfigError(f"L2 must be >= 0, got {self.L2}.")
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}.")


@EDIT_METHODS.register("alphaedit")
class AlphaEdit(MultiLayerMethod):
    """Null-space projected MEMIT; remembers the keys of earlier edits for sequential editing."""

    name = "alphaedit"
    hparams_class = AlphaEditHParams
    hparams: AlphaEditHParams
    weaker_preservation = (
        "Lower L2, raise nullspace_threshold or add layers; in a sequential "
        "run, a key close to an earlier edit's is held by that edit (reset() "
        "forgets them)."
    )

    def __init__(
        self,
        hparams: AlphaEditHParams | None = None,
        *,
        stats_cache: StatsCache | None = None,
        value_cache: ValueCache | None = None,
    ):
        super().__init__(hparams, stats_cache=stats_cache, value_cache=value_cache)
        self._projectors: dict[tuple[str, int], Tensor] = {}
        self._previous: dict[tuple[str, int], Tensor] = {}

    def reset(self) -> None:
        """Forget the keys of earlier edits."""
        self._previous.clear()

    def edited_keys(self, model: HookedModel, layer: int) -> Float[Tensor, "d_mlp d_mlp"] | None:
        """``Σ KᵀK`` over the edits this instance computed for ``layer`` (None before any)."""
        return self._previous.get((model.fingerprint(), layer))

    def prepare_layers(self, model: HookedModel, layers: list[int]) -> None:
        moments = self.second_moment(model, layers)
        for layer in layers:
            key = (model.fingerprint(), layer)
            if key not in self._projectors:
                P, rank = null_space(
                    model,
                    names.weight("mlp.W_out", layer),
                    moments[layer],
                    self.hparams.nullspace_threshold,
                    self.stats_cache,
                )
                if rank == 0:
                    smallest = float(torch.linalg.eigvalsh(moments[layer].double())[0])
                    raise ConfigError(
                        f"alphaedit: nullspace_threshold={self.hparams.nullspace_threshold:g} "
                        f"leaves no null space at layer {layer} (smallest eigenvalue "
                        f"{smallest:.3g}), so every edit would be a no-op; raise "
                        "nullspace_threshold."
                    )
                self._projectors[key] = P

    def solve(
        self,
        model: HookedModel,
        index: int,
        layer: int,
        K: Float[Tensor, "n d_mlp"],
        R: Float[Tensor, "n d_model"],
    ) -> tuple[Float[Tensor, "d_mlp rank"], Float[Tensor, "d_model rank"]]:
        P = self._projectors[(model.fingerprint(), layer)]
        previous = self._previous.get((model.fingerprint(), layer))
        if previous is None:
            previous = torch.zeros_like(P, dtype=torch.float64)
        return projected_update(K, R, P, previous, self.hparams.L2)

    def finish(
        self, model: HookedModel, layers: list[int], keys: dict[int, Float[Tensor, "n d_mlp"]]
    ) -> None:
        for layer, K in keys.items():
            key = (model.fingerprint(), layer)
            gram = K.double().T @ K.double()
            self._previous[key] = self._previous[key] + gram if key in self._previous else gram
