"""STA: Steering Target Atoms (Wang et al. 2025, arXiv 2505.20322; EasyEdit2's ``sta``).

A CAA pass over contrastive examples that also encodes every token with a sparse autoencoder.
The features whose activation amplitude and firing frequency both differ between the two
sides (the "target atoms") are kept; the steering direction is their amplitude differences
times their decoder rows, rescaled to the norm of the CAA vector. It steers like CAA, but only
along interpretable features that consistently separate the behaviours. The math lives in
``interv.sae.steering``; ``interv.sae.steering.feature_graph`` turns the vector into an
``SAEFeature`` graph node.

Example:
    >>> import interv  # doctest: +SKIP
    >>> from interv.data.steering import convsent_pairs
    >>> from interv.steer.sta import STA, STAHParams
    >>> model = interv.load()
    >>> vector = STA(STAHParams(multiplier=4.0)).fit(model, convsent_pairs(64))
    >>> model.generate(["I think that"], graph=STA.graph(vector, model))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..adapters import HookedModel
from ..data.steering import ABItem, ContrastPair
from ..hparams import HParams
from .base import STEER_METHODS, SteerMethod
from .caa import answer_groups, contrast_texts
from .vector import SteeringVector, model_identity


@dataclass(kw_only=True)
class STAHParams(HParams):
    method = "sta"
    sae: str = "smollm2-135m-res12"  # shipped SAE name, sae-lens folder, or release:sae_id
    layer: int | None = None  # must match the SAE's layer (None: the SAE's)
    mode: str = "act_and_freq"  # or only_act / only_freq
    trim: float = 0.65  # keep the top 1 - trim fraction by amplitude and by frequency
    act_threshold: float = 0.0  # alpha: minimum |mean activation difference|
    freq_threshold: float = 0.0  # beta: minimum |firing-frequency difference| (share of pairs)
    top_k: int | None = None  # at most this many features (by amplitude)
    match_norm: bool = True  # rescale to the CAA vector's norm
    multiplier: float = 1.0  # recommended strength when applied
    chat_template: bool = True  # A/B questions as a user turn
    balance_answers: bool = True  # A/B data: weigh A- and B-matching items equally (see caa.py)
    batch_size: int = 16
    dataset: str = ""

    def __post_init__(self) -> None:
        from ..sae.steering import MODES

        if self.mode not in MODES:
            raise ValueError(f"`mode` must be one of {', '.join(MODES)}, not {self.mode!r}.")
        if not 0 <= self.trim < 1:
            raise ValueError(f"`trim` must be in [0, 1), got {self.trim}.")
        if self.act_threshold < 0 or not 0 <= self.freq_threshold <= 1:
            raise ValueError("`act_threshold` must be >= 0 and `freq_threshold` in [0, 1].")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"`top_k` must be a positive number of features, got {self.top_k}.")
        if self.layer is not None and self.layer < 0:
            raise ValueError(f"`layer` must be >= 0, got {self.layer}.")


def load_sae(model: HookedModel, name: str, layer: int | None, sae: Any = None) -> Any:
    """The SAE to steer with (loaded unless given), checked against the model and layer."""
    from ..sae import load
    from ..sae.errors import SAEError

    sae = sae if sae is not None else load(name, model=model)
    sae.check(model)
    if layer is not None and not sae.hook_name.startswith(f"blocks.{layer}."):
        raise SAEError(
            f"`layer` is {layer}, but SAE {sae.id!r} reads {sae.hook_name!r}; set `layer` to "
            "the SAE's layer (or leave it empty) or pass an SAE trained on that layer."
        )
    return sae


@STEER_METHODS.register("sta")
class STA(SteerMethod):
    name = "sta"
    hparams_class = STAHParams

    def __init__(self, hparams: STAHParams | None = None, *, sae: Any = None):
        """``sae``: an already loaded ``HookedSAE`` (otherwise ``hparams.sae`` is loaded)."""
        super().__init__(hparams)
        self.sae = sae

    def fit(self, model: HookedModel, data: Sequence[ABItem | ContrastPair]) -> SteeringVector:
        from ..sae.steering import ContrastStats, select_features, span_means, sta_direction

        hp: STAHParams = self.hparams  # type: ignore[assignment]
        sae = self.sae = load_sae(model, hp.sae, hp.layer, self.sae)
        pos_ids, pos_spans, neg_ids, neg_spans = contrast_texts(model, data, hp.chat_template, method="STA")
        acts, codes = span_means(
            model, sae, pos_ids + neg_ids, pos_spans + neg_spans, hp.batch_size
        )
        n = len(pos_ids)
        groups = answer_groups(data) if hp.balance_answers else None
        stats = ContrastStats(acts[:n], acts[n:], codes[:n], codes[n:], groups)
        mask = select_features(
            stats.act_diff,
            stats.freq_diff,
            mode=hp.mode,
            trim=hp.trim,
            act_threshold=hp.act_threshold,
            freq_threshold=hp.freq_threshold,
            top_k=hp.top_k,
        )
        direction, features, values = sta_direction(sae, stats, mask, hp.match_norm)
        return SteeringVector(
            {sae.hook_name: direction},
            method=self.name,
            model=model_identity(model),
            dataset=hp.dataset,
            recommended_scale=hp.multiplier,
            meta={
                "sae": sae.id,
                "features": features,
                "values": values,
                "caa_norm": float(stats.caa.norm()),
                "n_examples": n,
                "hparams": hp.to_dict(),
            },
        )

    @staticmethod
    def graph(
        vector: SteeringVector, model: HookedModel, sae: Any = None, scale: float | None = None
    ) -> Any:
        """The vector as an intervention graph: one ``SAEFeature`` node adding the selected
        features' decoder rows at strength ``scale`` (default: the vector's multiplier)."""
        from ..sae import load
        from ..sae.steering import feature_graph

        sae = sae if sae is not None else load(vector.meta["sae"], model=model)
        return feature_graph(vector, sae, scale)
