"""SAE-feature steering (EasyEdit2's ``sae_feature``): no data, just chosen features.

The vector is ``sum_i strengths[i] * W_dec[features[i]]``: the decoder directions of SAE
features you picked (with ``interv sae inspect``, Neuronpedia, or STA's selection), added at
the SAE's hook. Clamping or scaling features instead of adding them is the ``SAEFeature``
graph node's ``mode="clamp"`` / ``"scale"``.

Example:
    >>> import interv  # doctest: +SKIP
    >>> from interv.steer.sae_feature import SAEFeatureSteer, SAEFeatureHParams
    >>> model = interv.load()
    >>> vector = SAEFeatureSteer(SAEFeatureHParams(features=[12], strengths=[8.0])).fit(model)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..adapters import HookedModel
from ..hparams import HParams
from .base import STEER_METHODS, SteerMethod
from .sta import load_sae
from .vector import SteeringVector, model_identity


@dataclass(kw_only=True)
class SAEFeatureHParams(HParams):
    method = "sae_feature"
    sae: str = "smollm2-135m-res12"  # shipped SAE name, sae-lens folder, or release:sae_id
    layer: int | None = None  # must match the SAE's layer (None: the SAE's)
    features: list[int] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)  # one per feature
    multiplier: float = 1.0  # recommended strength when applied

    def __post_init__(self) -> None:
        if len(self.strengths) != len(self.features):
            raise ValueError(
                f"`strengths` has {len(self.strengths)} values for {len(self.features)} "
                "features; give one strength per feature."
            )


@STEER_METHODS.register("sae_feature")
class SAEFeatureSteer(SteerMethod):
    name = "sae_feature"
    hparams_class = SAEFeatureHParams
    data_kind = None  # the features and strengths are hyperparameters

    def __init__(self, hparams: SAEFeatureHParams | None = None, *, sae: Any = None):
        super().__init__(hparams)
        self.sae = sae

    def fit(self, model: HookedModel, data: Any = None) -> SteeringVector:
        """``data`` is ignored: the features and strengths are the hyperparameters."""
        from ..sae.steering import feature_direction

        hp: SAEFeatureHParams = self.hparams  # type: ignore[assignment]
        if not hp.features:
            raise ValueError("`features` is empty; name the SAE features to steer with.")
        sae = self.sae = load_sae(model, hp.sae, hp.layer, self.sae)
        direction = feature_direction(sae, hp.features, hp.strengths)
        return SteeringVector(
            {sae.hook_name: direction},
            method=self.name,
            model=model_identity(model),
            dataset="",
            recommended_scale=hp.multiplier,
            meta={
                "sae": sae.id,
                "features": list(hp.features),
                "values": [float(s) for s in hp.strengths],
                "hparams": hp.to_dict(),
            },
        )
