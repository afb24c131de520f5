"""SAE-feature steering (EasyEdit2's ``sae_feature``): no data, just chosen features.

The vector is ``sum_i strengths[i] * W_dec[features[i]]``: the decoder directions of SAE
features you picked (with ``interv sae inspect``, Neuronpedia, or STA's selection), added at
the SAE's hook. ``feature_graph`` turns such a vector (or STA's) into one ``SAEFeature`` graph
node, which saves with the SAE's id; clamping or scaling features instead of adding them is
that node's ``mode="clamp"`` / ``"scale"``.

Example (with the default model)::

    import interv
    from interv.steer.sae_feature import SAEFeatureSteer, SAEFeatureHParams
    model = interv.load()
    vector = SAEFeatureSteer(SAEFeatureHParams(features=[12], strengths=[8.0])).fit(model)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel, names
from ..errors import ConfigError, SAEError
from ..graph import Graph, SAEFeature
from ..hparams import HParams
from ..record import ModelRecord
from ..sae import HookedSAE
from ..sae import load as load_named_sae
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector


@dataclass(kw_only=True)
class SAEFeatureHParams(HParams):
    method = "sae_feature"
    sae: str = "smollm2-135m-res12"  # shipped SAE name, sae-lens folder, or release:sae_id
    layer: int | None = None  # must match the SAE's layer (None: the SAE's)
    features: list[int] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)  # one per feature
    multiplier: float = 1.0  # recommended strength when applied

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's keys: ``sae_path`` (a local SAE) or ``release`` + ``sae_id`` (sae-lens)
        name the SAE, ``position_ids`` the features."""
        return ee2_sae_keys(values, source, {"position_ids": "features"})

    def __post_init__(self) -> None:
        if len(self.strengths) != len(self.features):
            raise ConfigError(
                f"`strengths` has {len(self.strengths)} values for {len(self.features)} "
                "features; give one strength per feature."
            )


def load_sae(
    model: HookedModel, name: str, layer: int | None, sae: HookedSAE | None = None
) -> HookedSAE:
    """The SAE to steer with (loaded unless given), checked against the model and layer."""
    sae = sae if sae is not None else load_named_sae(name, model=model)
    sae.check(model)
    if layer is not None and names.layer_of(sae.hook_name) != layer:
        raise SAEError(
            f"`layer` is {layer}, but SAE {sae.id!r} reads {sae.hook_name!r}; set `layer` to "
            "the SAE's layer (or leave it empty) or pass an SAE trained on that layer."
        )
    return sae


def feature_direction(
    sae: HookedSAE, features: Sequence[int], strengths: Sequence[float]
) -> Float[Tensor, " d_in"]:
    """``sum strengths[k] * W_dec[features[k]]`` (the data-free ``sae_feature`` vector)."""
    index = sae.check_features(features)
    if len(strengths) != len(index):
        raise SAEError(
            f"{len(strengths)} strengths for {len(index)} features; give one per feature."
        )
    rows = sae.W_dec.detach().float().cpu()[index]
    return torch.tensor([float(s) for s in strengths]) @ rows


def feature_graph(vector: SteeringVector, sae: HookedSAE, scale: float | None = None) -> Graph:
    """The intervention graph of an SAE-feature steering vector: one ``SAEFeature`` node that
    adds the features' decoder rows (``vector.meta`` features/values), at strength ``scale``
    (default: the vector's recommended scale). Saved graphs name the SAE by its id."""
    meta = vector.meta
    if "features" not in meta or "values" not in meta:
        raise SAEError(
            "This vector does not record SAE features; it was not made by sta or sae_feature."
        )
    if meta.get("sae") not in (None, sae.id):
        raise SAEError(f"The vector was made with SAE {meta['sae']!r}, not {sae.id!r}.")
    strength = vector.recommended_scale if scale is None else scale
    node = SAEFeature(
        sae,
        list(meta["features"]),
        mode="add",
        values=list(meta["values"]),
        strength=strength,
        sae_id=sae.id,
        name=vector.method or "sae",
    )
    return Graph(
        [node],
        model=vector.model,
        meta={"method": vector.method, "hparams": meta.get("hparams", {})},
    )


@STEER_METHODS.register("sae_feature")
class SAEFeatureSteer(SteerMethod[None, SteeringVector]):
    name = "sae_feature"
    hparams_class = SAEFeatureHParams
    data_kind = None  # the features and strengths are hyperparameters
    hparams: SAEFeatureHParams

    def __init__(self, hparams: SAEFeatureHParams | None = None, *, sae: HookedSAE | None = None):
        super().__init__(hparams)
        self.sae = sae

    def fit(self, model: HookedModel, data: Any = None) -> SteeringVector:
        """``data`` is ignored: the features and strengths are the hyperparameters."""
        hp = self.hparams
        if not hp.features:
            raise ConfigError("`features` is empty; name the SAE features to steer with.")
        sae = self.sae = load_sae(model, hp.sae, hp.layer, self.sae)
        direction = feature_direction(sae, hp.features, hp.strengths)
        return SteeringVector(
            {sae.hook_name: direction},
            method=self.name,
            model=ModelRecord.of(model),
            recommended_scale=hp.multiplier,
            meta={
                "sae": sae.id,
                "features": list(hp.features),
                "values": [float(s) for s in hp.strengths],
                "hparams": hp.to_dict(),
            },
        )


def ee2_sae_keys(values: dict[str, Any], source: str, renames: dict[str, str]) -> dict[str, Any]:
    """EasyEdit2's SAE keys as interv's ``sae``: ``sae_path`` (or ``sae_paths``, one path) or
    ``release`` + ``sae_id``; ``renames`` maps further keys to fields."""
    out = dict(values)
    paths = out.pop("sae_paths", None)
    if paths is not None:
        paths = [paths] if isinstance(paths, str) else list(paths)
        if len(paths) != 1:
            raise ConfigError(
                f"{source}: sae_paths lists {len(paths)} SAEs; interv steers with one SAE per "
                "method file (write one file per layer)."
            )
        out.setdefault("sae_path", paths[0])
    path, release, sae_id = (
        out.pop("sae_path", None),
        out.pop("release", None),
        out.pop("sae_id", None),
    )
    if (release is None) != (sae_id is None):
        raise ConfigError(f"{source}: release and sae_id go together; give both or neither.")
    named = path or (f"{release}:{sae_id}" if release else None)
    if named is not None:
        if out.get("sae", named) != named:
            raise ConfigError(f"{source}: sae and sae_path/release name different SAEs; keep one.")
        out["sae"] = str(named)
    for key, field_name in renames.items():
        if key in out:
            out[field_name] = out.pop(key)
    return out
