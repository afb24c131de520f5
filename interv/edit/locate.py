"""Locate-then-edit: the base of ROME, MEMIT, AlphaEdit and EMMET, public for new editors.

A locate-then-edit method writes a fact into MLP output weights: it reads the weight's input
(the *key*) at the subject's lookup token, optimises the output that makes the model say the
new target (the *value*) and solves for the weight change mapping the key to the value while
disturbing other keys least, weighted by their second moment. This module holds what every such
method shares:

* ``LocateHParams``: the hyperparameters they all have (EasyEdit's key names);
* ``LocateMethod``: checks, cached statistics and context templates, automatic layer choice;
* ``MultiLayerMethod``: MEMIT's loop (optimise the residual after the last layer, spread it
  over the layers, one least-squares solve each); a subclass writes ``solve`` only;
* the key and value machinery they call (``mean_keys``, ``optimise_values``,
  ``lookup_activation``, ``ValueCache``), re-exported here so a new method imports one module.

Writing a new batch editor is one file: subclass ``MultiLayerMethod``, declare its
hyperparameters (a subclass of ``LocateHParams``), implement ``solve`` and register it (see
docs/extending.md).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..analysis.causal_trace import causal_trace
from ..errors import ConfigError, EditError
from ..hparams import HParams
from ..patch import PatchSet, WeightPatch
from ..requests import EditRequest
from ..stats import StatsCache, layer_stats
from ._hparams import LocateHParams
from ._keys import mean_keys
from ._templates import context_templates
from ._values import ValueCache, ValueResult, lookup_activation, optimise_values
from .base import EditMethod

__all__ = [
    "LocateHParams",
    "LocateMethod",
    "MultiLayerMethod",
    "ValueCache",
    "ValueResult",
    "low_rank_patch",
    "lookup_activation",
    "mean_keys",
    "optimise_values",
]

log = logging.getLogger(__name__)


class LocateMethod(EditMethod):
    """Checks and caches shared by the locate-then-edit methods (all state lives on the
    instance; caches are keyed by the model's fingerprint and dtype)."""

    hparams: LocateHParams

    def __init__(
        self,
        hparams: HParams | None = None,
        *,
        stats_cache: StatsCache | None = None,
        value_cache: ValueCache | None = None,
    ):
        super().__init__(hparams)
        self.stats_cache = stats_cache
        self.value_cache = value_cache
        self.last_values: ValueResult | None = None  # diagnostics of the latest computation
        self._moments: dict[tuple[Any, ...], Tensor] = {}
        self._templates: dict[tuple[str, str], list[str]] = {}
        self._auto_layers: dict[tuple[str, str, int], list[int]] = {}

    # ------------------------------------------------------------------------- checks
    def check(self, model: HookedModel, requests: Sequence[EditRequest]) -> None:
        """Every problem with the model, hyperparameters or requests, before any work."""
        hp, cfg = self.hparams, model.cfg
        if not requests:
            raise EditError(f"{self.name}: no edit requests given.")
        if hp.model_dims:
            wrong = {
                k: (v, getattr(cfg, k, None))
                for k, v in hp.model_dims.items()
                if getattr(cfg, k, None) != v
            }
            if wrong:
                detail = ", ".join(
                    f"{k}={want} (model has {have})" for k, (want, have) in wrong.items()
                )
                raise ConfigError(
                    f"{self.name}: these hyperparameters are for another "
                    f"architecture: {detail}. Use hyperparameters made for "
                    f"{cfg.name} (or drop model_dims)."
                )
        if not (hp.v_loss_layer == -1 or 0 <= hp.v_loss_layer < cfg.n_layers):
            raise ConfigError(
                f"{self.name}: v_loss_layer={hp.v_loss_layer} but {cfg.name} has "
                f"layers 0..{cfg.n_layers - 1}; these hyperparameters are for "
                "another architecture."
            )
        if hp.layers != "auto":
            self.check_layers(model, hp.layers)
        for request in requests:
            request.require_subject(self.name)

    def prepare(self, model: HookedModel) -> None:
        """Load the statistics of the configured layers (``layers: auto`` waits for requests)."""
        if self.hparams.layers != "auto":
            self.prepare_layers(model, list(self.hparams.layers))

    def prepare_layers(self, model: HookedModel, layers: list[int]) -> None:
        """Load what the edit of ``layers`` needs before the value optimisation starts."""
        self.second_moment(model, layers)

    # ------------------------------------------------------------------------ helpers
    def templates(self, model: HookedModel) -> list[str]:
        hp = self.hparams
        key = (model.fingerprint(), str(model.dtype))
        if key not in self._templates:
            self._templates[key] = context_templates(
                model, hp.context_template_length_params, source=hp.context_template_source
            )
        return self._templates[key]

    def second_moment(
        self, model: HookedModel, layers: Sequence[int]
    ) -> dict[int, Float[Tensor, "d_mlp d_mlp"]]:
        """``E[k kᵀ]`` of each layer's ``W_out`` input (one corpus pass for all missing ones)."""
        hp = self.hparams
        tag = (
            model.fingerprint(),
            str(model.dtype),
            hp.mom2_dataset,
            hp.mom2_n_samples,
            hp.mom2_dtype,
        )
        missing = [layer for layer in layers if (*tag, layer) not in self._moments]
        if missing:
            dataset = None if hp.mom2_dataset == "default" else Path(hp.mom2_dataset)
            weights = [names.weight("mlp.W_out", layer) for layer in missing]
            stats = layer_stats(
                model,
                weights,
                dataset,
                hp.mom2_n_samples,
                dtype=hp.mom2_dtype,
                cache=self.stats_cache,
            )
            for layer, weight in zip(missing, weights, strict=True):
                self._moments[(*tag, layer)] = stats[weight].mom2
        return {layer: self._moments[(*tag, layer)] for layer in layers}

    def resolve_layers(
        self, model: HookedModel, requests: Sequence[EditRequest], count: int
    ) -> list[int]:
        """``hparams.layers``, or for ``"auto"`` the ``count`` layers where causal tracing finds
        the subject's MLP matters most (traced once per model on the first requests)."""
        if self.hparams.layers != "auto":
            return list(self.hparams.layers)
        key = (model.fingerprint(), str(model.dtype), count)
        if key not in self._auto_layers:
            trace = causal_trace(model, requests[: self.hparams.trace_prompts], kinds=("mlp",))
            self._auto_layers[key] = trace.best_window("mlp", count)
            log.info("%s: layers=auto picked %s", self.name, self._auto_layers[key])
        return self._auto_layers[key]


def low_rank_patch(
    weight: str, U: Float[Tensor, "rows rank"], V: Float[Tensor, "cols rank"]
) -> WeightPatch:
    """``U @ Vᵀ`` as a low-rank patch when that is smaller than the dense delta."""
    rows, cols, rank = U.shape[0], V.shape[0], U.shape[1]
    if rank * (rows + cols) < rows * cols:
        return WeightPatch(weight, U=U.float().contiguous(), V=V.float().contiguous())
    return WeightPatch(weight, delta=(U @ V.T).float())


class MultiLayerMethod(LocateMethod):
    """MEMIT's loop: optimise the target residual at the last layer, then spread the residual
    over the layers from first to last, solving one least-squares update per layer."""

    batchable = True
    default_layer_count = 5
    # what to change when the updates write too little of the target (``_report_residual``)
    weaker_preservation = "Lower the preservation weight (e.g. mom2_update_weight) or add layers."

    @abstractmethod
    def solve(
        self,
        model: HookedModel,
        index: int,
        layer: int,
        K: Float[Tensor, "n d_mlp"],
        R: Float[Tensor, "n d_model"],
    ) -> tuple[Float[Tensor, "d_mlp rank"], Float[Tensor, "d_model rank"]]:
        """``(U, V)`` with ``ΔW = U @ Vᵀ`` writing residuals ``R`` for keys ``K`` into ``layer``."""

    def finish(
        self, model: HookedModel, layers: list[int], keys: dict[int, Float[Tensor, "n d_mlp"]]
    ) -> None:
        """Hook for bookkeeping after a successful computation (AlphaEdit stores the keys)."""

    def compute(self, model: HookedModel, requests: Sequence[EditRequest]) -> PatchSet:
        self.check(model, requests)
        hp = self.hparams
        layers = sorted(self.resolve_layers(model, requests, self.default_layer_count))
        self.prepare_layers(model, layers)
        templates = self.templates(model)
        z_site = names.hook("resid_post", layers[-1])
        values = optimise_values(
            model,
            requests,
            z_site,
            templates,
            hp,
            self.name,
            self.value_cache,
            progress=self.report,
        )
        self.last_values = values
        targets = values.init + values.delta
        patches, applied, keys = [], [], {}
        try:
            for index, layer in enumerate(layers):
                K = mean_keys(model, requests, layer, templates, hp.fact_token, self.name)
                current = lookup_activation(model, requests, z_site, hp.fact_token, self.name)
                R = (targets - current) / (len(layers) - index)
                U, V = self.solve(model, index, layer, K, R)
                patch = low_rank_patch(names.weight("mlp.W_out", layer), U, V)
                applied.append(PatchSet([patch]).apply(model))
                patches.append(patch)
                keys[layer] = K
            self._report_residual(model, requests, z_site, targets, values.init)
        finally:
            for done in reversed(applied):
                done.revert(model)
        self.finish(model, layers, keys)
        return self.patch_set(model, requests, patches)

    def _report_residual(
        self,
        model: HookedModel,
        requests: Sequence[EditRequest],
        z_site: str,
        targets: Float[Tensor, "n d_model"],
        init: Float[Tensor, "n d_model"],
    ) -> None:
        """Warn when the layer updates leave most of the wanted change unwritten (a preservation
        weight too large for the model silently turns edits into no-ops)."""
        reached = lookup_activation(model, requests, z_site, self.hparams.fact_token, self.name)
        wanted = (targets - init).norm(dim=1).clamp_min(1e-8)
        written = 1 - (targets - reached).norm(dim=1) / wanted
        if float(written.mean()) < 0.5:
            log.warning(
                "%s wrote only %.0f%% of the target change on average; the edits may not stick. %s",
                self.name,
                100 * float(written.mean()),
                self.weaker_preservation,
            )
